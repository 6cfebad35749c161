"""The GAN and classifier loops on real digits: schedules obeyed, learning happens, divergence is named."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from distgan.config import ClassifierConfig, EngineConfig, GanConfig
from distgan.data.sources import ImageSplit, load_split
from distgan.errors import TrainingError
from distgan.models.classifiers import build_classifier, load_classifier, save_classifier
from distgan.models.gan import load_generator
from distgan.train.classifier import evaluate_classifier
from distgan.train.classifier import train_classifier as fit
from distgan.train.gan import save_generator, train_gan


@pytest.fixture(scope="module")
def digits():
    return load_split("digits", "train", image_size=16), load_split("digits", "test", image_size=16)


def test_gan_follows_the_d_steps_schedule_and_checkpoints(digits, tmp_path):
    cfg = GanConfig(iterations=30, batch_size=16, g_width=8, d_width=8, d_steps_schedule="3,2@10,1@20")
    generator, info = train_gan(cfg, digits[0], progress=False)
    assert info["num_d_steps"] == 10 * 3 + 10 * 2 + 10 * 1
    assert info["num_g_steps"] == 30
    save_generator(tmp_path / "g.pt", generator, cfg, image_size=16, channels=1)
    restored = load_generator(tmp_path / "g.pt").eval()
    z, y = torch.randn(4, cfg.latent_dim), torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(restored(z, y), generator.eval()(z, y))


def test_gan_divergence_names_the_iteration(digits):
    cfg = GanConfig(iterations=5, batch_size=8, g_width=8, d_width=8, lr_d=1e30, lr_g=1e30)
    with pytest.raises(TrainingError, match=r"GAN [DG] loss is (nan|inf|-inf) at iteration \d"):
        train_gan(cfg, digits[0], progress=False)


@pytest.mark.parametrize("arch", ["resnet20", "resnet32", "small_cnn"])
def test_classifier_learns_digits(digits, arch):
    train, test = digits
    cfg = ClassifierConfig(arch=arch, epochs=6, warmup_fraction=1 / 6, batch_size=64)
    epochs_seen = []
    model = fit(cfg, train, num_classes=10, on_epoch_end=lambda epoch, m: epochs_seen.append((epoch, m["lr"])))
    scores = evaluate_classifier(model, test)
    assert [e for e, _ in epochs_seen] == list(range(6))
    assert scores["top1_error"] < 0.5  # chance is 0.9
    assert scores["top5_error"] <= scores["top1_error"]
    assert len(scores["per_class_accuracy"]) == 10 and scores["num_test_samples"] == 360


def test_classifier_divergence_names_the_epoch(digits):
    with pytest.raises(TrainingError, match=r"classifier loss is nan in epoch 0"):
        fit(ClassifierConfig(arch="small_cnn", epochs=1, base_lr=1e12, warmup_fraction=0.0), digits[0], num_classes=10)


def test_resnet50_shapes_and_checkpoint(tmp_path):
    model = build_classifier("resnet50", 3, 7).eval()
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 7) and model.features(x).shape == (2, 2048)
    save_classifier(tmp_path / "m.pt", model, arch="resnet50", in_channels=3, num_classes=7)
    torch.testing.assert_close(load_classifier(tmp_path / "m.pt")(x), model(x))


def test_evaluation_of_a_perfect_and_a_constant_classifier(digits):
    _, test = digits

    class Oracle(torch.nn.Module):
        def __init__(self, labels):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.lookup = {x.tobytes(): y for x, y in zip(test.images_NHWC, labels, strict=True)}

        def forward(self, x):
            images = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            return torch.nn.functional.one_hot(torch.tensor([self.lookup[i.tobytes()] for i in images]), 10).float()

    assert evaluate_classifier(Oracle(test.labels_N), test)["top1_error"] == 0.0
    constant = ImageSplit(
        images_NHWC=test.images_NHWC, labels_N=np.zeros_like(test.labels_N), class_names=test.class_names
    )
    scores = evaluate_classifier(Oracle(constant.labels_N), test)
    assert scores["per_class_accuracy"][0] == 1.0 and sum(scores["per_class_accuracy"][1:]) == 0.0


def test_gan_resumes_from_its_checkpoint_exactly(digits, tmp_path):
    cfg = GanConfig(iterations=30, batch_size=16, g_width=8, d_width=8, d_steps_schedule="2,1@15")
    engine = EngineConfig(checkpoint_every_steps=10)
    uninterrupted, info = train_gan(cfg, digits[0], engine_cfg=engine, checkpoint_dir=tmp_path / "a", progress=False)
    # A run stopped after iteration 20, then started again with the full length, resumes from step 20.
    train_gan(replace(cfg, iterations=20), digits[0], engine_cfg=engine, checkpoint_dir=tmp_path / "b", progress=False)
    assert (tmp_path / "b" / "latest").read_text().strip() == "step000000020"
    resumed, resumed_info = train_gan(cfg, digits[0], engine_cfg=engine, checkpoint_dir=tmp_path / "b", progress=False)
    assert resumed_info["num_d_steps"] == info["num_d_steps"] == 15 * 2 + 15
    for key, value in uninterrupted.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)
