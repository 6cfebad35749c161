"""One GAN iteration and two classifier epochs on DeepSpeed (ZeRO-1) with bf16 forced (DISTGAN_PRECISION=bf16), the
precision GPUs get; run under torchrun by test_gpu_paths.py. Rank 0 writes what it saw to OUT.json.

usage: bf16_job.py OUT.json
"""

import dataclasses
import json
import sys

import torch
from torch import nn

from distgan.config import ClassifierConfig, EngineConfig, GanConfig
from distgan.data.sources import load_split
from distgan.models.truncation import sample_images
from distgan.runtime import distributed
from distgan.train.classifier import evaluate_classifier, train_classifier
from distgan.train.gan import train_gan

ENGINE = EngineConfig(backend="deepspeed", zero_stage=1)


def main(out: str) -> None:
    distributed.init_from_env()
    conv_output_dtypes = set()

    def record(module, inputs, output):
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            conv_output_dtypes.add(str(output.dtype))

    torch.nn.modules.module.register_module_forward_hook(record)
    train, test = load_split("digits", "train", image_size=16), load_split("digits", "test", image_size=16)

    gan_cfg = GanConfig(iterations=1, batch_size=16, g_width=8, d_width=8, d_steps_schedule="1")
    generator, gan_info = train_gan(gan_cfg, train, engine_cfg=ENGINE, progress=False)
    gan_output_dtypes, conv_output_dtypes = sorted(conv_output_dtypes), set()

    small = dataclasses.replace(train, images_NHWC=train.images_NHWC[:128], labels_N=train.labels_N[:128])
    epochs = []
    classifier = train_classifier(
        ClassifierConfig(arch="small_cnn", epochs=2, batch_size=64),
        small,
        num_classes=10,
        engine_cfg=ENGINE,
        on_epoch_end=lambda epoch, logged: epochs.append(logged),
    )
    classifier_output_dtypes, conv_output_dtypes = sorted(conv_output_dtypes), set()

    # After training, the plain modules are fp32 and serve fp32 inputs without autocast (evaluation, sampling).
    scores = evaluate_classifier(classifier, test)
    samples = sample_images(generator, train.labels_N[:8], truncation=1.0, factor=2.0, seed=0)
    parameter_dtypes = {str(p.dtype) for module in (generator, classifier) for p in module.parameters()}
    if distributed.rank() == 0:
        seen = {
            "gan_losses": gan_info["losses"],
            "classifier_train_losses": [logged["train_loss"] for logged in epochs],
            "gan_conv_output_dtypes": gan_output_dtypes,
            "classifier_conv_output_dtypes": classifier_output_dtypes,
            "evaluation_conv_output_dtypes": sorted(conv_output_dtypes),
            "parameter_dtypes": sorted(parameter_dtypes),
            "top1_error": scores["top1_error"],
            "num_samples": len(samples),
        }
        with open(out, "w") as sink:
            json.dump(seen, sink)


if __name__ == "__main__":
    main(sys.argv[1])
    distributed.shutdown(wait_for_others=True)
    distributed.exit_process(0)
