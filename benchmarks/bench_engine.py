"""Engine overhead: classifier samples/s through distgan's engine (DDP, DeepSpeed; 1 and 2 workers)
against a plain single-process PyTorch loop on the same model, data and augmentation, in the same run.

Claim (issue 5): at 1 worker the engine costs ≤ 5 % of the plain loop's throughput.
    python benchmarks/bench_engine.py [--quick]
Timing excludes start-up and the first epoch (warm-up): it is taken between epoch ends.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from distgan.config import ClassifierConfig, EngineConfig
from distgan.data.sources import load_split
from distgan.data.transforms import random_crop_flip, to_model_input
from distgan.models.classifiers import build_classifier
from distgan.train import distributed
from distgan.train.classifier import epoch_indices, train_classifier
from distgan.train.schedules import goyal_learning_rate


def plain_loop_samples_per_sec(cfg: ClassifierConfig, train) -> float:
    """The reference: the same work written as a textbook PyTorch loop, no engine, no process group."""
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.arch, 1, 10)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=goyal_learning_rate(cfg.base_lr, cfg.batch_size, cfg.reference_batch_size),
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    images, labels = to_model_input(train.images_NHWC), torch.as_tensor(train.labels_N)
    rng = torch.Generator().manual_seed(0)
    steps = math.ceil(len(labels) / cfg.batch_size)
    epoch_ends = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.from_numpy(epoch_indices(len(labels), epoch, cfg.seed))
        for step in range(steps):
            batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x = random_crop_flip(images[batch], padding=cfg.crop_padding, flip=False, generator=rng)
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        epoch_ends.append(time.perf_counter())
    return (cfg.epochs - 1) * len(labels) / (epoch_ends[-1] - epoch_ends[0])


def engine_samples_per_sec(cfg: ClassifierConfig, train, backend: str) -> float:
    """Samples/s of `train_classifier` through the engine on this process's world."""
    epoch_ends = []
    train_classifier(
        cfg,
        train,
        num_classes=10,
        engine_cfg=EngineConfig(backend=backend),
        on_epoch_end=lambda epoch, _: epoch_ends.append(time.perf_counter()),
    )
    return (cfg.epochs - 1) * len(train.labels_N) / (epoch_ends[-1] - epoch_ends[0])


def engine_job(backend: str, epochs: int, workers: int) -> float:
    """This script as `workers` torchrun workers sharing the 2 cores; rank 0 prints its samples/s.

    Each measurement gets fresh processes, so no engine's process group or environment leaks into another.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(workers), __file__]
    command += ["--worker", backend, "--epochs", str(epochs)]
    threads = str(max(1, 2 // workers))
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": threads})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 epochs instead of 12")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--worker", choices=["ddp", "deepspeed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = args.epochs or (4 if args.quick else 12)
    cfg = replace(ClassifierConfig(), epochs=epochs, warmup_epochs=1.0)
    train = load_split("digits", "train", image_size=16)
    if args.worker:
        distributed.init_from_env()
        rate = engine_samples_per_sec(cfg, train, args.worker)
        if distributed.rank() == 0:
            print(json.dumps({"samples_per_sec": rate}))
        distributed.shutdown(wait_for_others=True)
        return

    torch.set_num_threads(2)  # the reference uses both cores, as every engine run does
    plain = plain_loop_samples_per_sec(cfg, train)
    rows = [("plain PyTorch loop (reference)", plain)]
    for workers, label in ((1, "1 worker × 2 threads"), (2, "2 workers × 1 thread")):
        rows += [
            (f"engine {backend}, {label}", engine_job(backend, epochs, workers)) for backend in ("ddp", "deepspeed")
        ]
    print(f"ResNet-20, digits 16×16, global batch {cfg.batch_size}, {epochs} epochs (first excluded), 2 CPU cores")
    for name, rate in rows:
        print(f"{name:40s} {rate:8.0f} samples/s   ratio to reference {rate / plain:5.2f}")
    overhead = 1 - max(rate for name, rate in rows[1:3]) / plain
    print(f"engine overhead at 1 worker (best backend): {100 * overhead:.1f} %  (target ≤ 5 %)")


if __name__ == "__main__":
    main()
