"""Engine overhead: classifier samples/s through distgan's engine (DDP, DeepSpeed; 1 and 2 workers)
against a plain single-process PyTorch loop on the same model, data, augmentation and learning-rate schedule,
in the same run.

Claim (issue 5): at 1 worker the engine costs ≤ 5 % of the plain loop's throughput.
    python benchmarks/bench_engine.py [--quick] [--rounds 3]

The plain loop does exactly the engine's work: same initial weights, same crops, same schedule, so both end
with bit-identical weights (checked and printed: a loop that computed something else, e.g. met more denormal
numbers, could differ in speed for that reason alone). The engine sets glibc's malloc thresholds in its workers
(distgan/train/host_memory.py); the reference gets the same settings, so that the ratio is the engine's own
cost, and the plain loop with default malloc is shown beside it. Every measurement is a fresh process (torchrun for the
engine, plain python for the reference) with 2 threads per worker-core share; rounds alternate all runs so that
load drift hits all alike; the best round of each run is compared (as timeit does: noise only slows).
Timing excludes start-up and the first epoch (warm-up): it is taken between epoch ends.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from statistics import median

import torch
import torch.nn.functional as F
from common import benchmark_parser

from distgan.config import ClassifierConfig, EngineConfig
from distgan.data.order import rank_indices
from distgan.data.sources import load_split
from distgan.data.transforms import random_crop_flip, to_model_input
from distgan.models.classifiers import build_classifier
from distgan.runtime import distributed
from distgan.train import host_memory
from distgan.train.classifier import train_classifier
from distgan.train.schedules import classifier_lr_schedule, goyal_learning_rate

RUNS = {  # name → (loop, workers); the plain loop with the engine's malloc settings is the reference
    "plain loop, engine's malloc (reference)": ("plain-malloc", 1),
    "plain loop, default malloc": ("plain", 1),
    "engine ddp, 1 worker × 2 threads": ("ddp", 1),
    "engine deepspeed, 1 worker × 2 threads": ("deepspeed", 1),
    "engine ddp, 2 workers × 1 thread": ("ddp", 2),
    "engine deepspeed, 2 workers × 1 thread": ("deepspeed", 2),
}


def plain_loop(cfg: ClassifierConfig, train) -> tuple[float, torch.nn.Module]:
    """The reference: the same work written as a textbook PyTorch loop, no engine, no process group;
    returns (samples/s, trained model)."""
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.arch, 1, 10)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=goyal_learning_rate(cfg.base_lr, cfg.batch_size, cfg.reference_batch_size),
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    images, labels = to_model_input(train.images_NHWC), torch.as_tensor(train.labels_N)
    rng = torch.Generator().manual_seed(cfg.seed * 7919)  # the engine's augmentation seed on rank 0: same crops
    steps = math.ceil(len(labels) / cfg.batch_size)
    schedule = classifier_lr_schedule(optimizer, cfg, steps)  # the engine's: part of the work
    epoch_ends = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.from_numpy(rank_indices(len(labels), epoch=epoch, seed=cfg.seed, rank=0, world_size=1))
        for step in range(steps):
            batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x = random_crop_flip(images[batch], padding=cfg.crop_padding, flip=cfg.horizontal_flip, generator=rng)
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        epoch_ends.append(time.perf_counter())
    return (cfg.epochs - 1) * len(labels) / (epoch_ends[-1] - epoch_ends[0]), model


def engine_run(cfg: ClassifierConfig, train, backend: str) -> tuple[float, torch.nn.Module]:
    """(samples/s, trained model) of `train_classifier` through the engine on this process's world."""
    epoch_ends = []
    model = train_classifier(
        cfg,
        train,
        num_classes=10,
        engine_cfg=EngineConfig(backend=backend),
        on_epoch_end=lambda epoch, _: epoch_ends.append(time.perf_counter()),
    )
    return (cfg.epochs - 1) * len(train.labels_N) / (epoch_ends[-1] - epoch_ends[0]), model


def measure(backend: str, workers: int, epochs: int, weights: Path) -> float:
    """One fresh process (torchrun for the engine) running `--worker backend`; returns rank 0's samples/s.
    The worker writes its final weights to `weights`. Threads: the 2 cores shared among the workers."""
    command = [sys.executable, __file__, "--worker", backend, "--epochs", str(epochs), "--weights", str(weights)]
    if not backend.startswith("plain"):
        command[1:1] = ["-m", "torch.distributed.run", "--nproc-per-node", str(workers)]
    threads = str(max(1, 2 // workers))
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": threads})
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 and not (lines and lines[-1].startswith('{"samples_per_sec"')):
        raise RuntimeError(done.stderr[-3000:])
    if done.returncode != 0:  # seen rarely: a rank aborts in gloo's teardown after its result (docs/engine.md)
        print(f"warning: {backend} × {workers} exited with {done.returncode} after its result: "
              f"{done.stderr.strip().splitlines()[0] if done.stderr.strip() else ''}", file=sys.stderr)  # fmt: skip
    return json.loads(lines[-1])["samples_per_sec"]


def worker(backend: str, cfg: ClassifierConfig, weights: Path) -> None:
    train = load_split("digits", "train", image_size=16)
    if backend.startswith("plain"):
        if backend == "plain-malloc":
            host_memory.keep_freed_memory()
        rate, model = plain_loop(cfg, train)
    else:
        distributed.init_from_env()
        rate, model = engine_run(cfg, train, backend)
    if distributed.rank() == 0:
        torch.save(model.state_dict(), weights)
        print(json.dumps({"samples_per_sec": rate}))
    if not backend.startswith("plain"):
        distributed.shutdown(wait_for_others=True)


def max_weight_difference(a: Path, b: Path) -> float:
    state_a, state_b = torch.load(a), torch.load(b)
    return max((state_a[k].double() - state_b[k].double()).abs().max().item() for k in state_a)


def main() -> None:
    parser = benchmark_parser(__doc__, "4 epochs and 1 round instead of 12 and 3")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--worker", choices=["plain", "plain-malloc", "ddp", "deepspeed"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = args.epochs or (4 if args.quick else 12)
    cfg = replace(ClassifierConfig(), epochs=epochs)
    if args.worker:
        worker(args.worker, cfg, args.weights)
        return

    rates: dict[str, list[float]] = {name: [] for name in RUNS}
    with tempfile.TemporaryDirectory() as tmp:
        weights = {name: Path(tmp) / f"{i}.pt" for i, name in enumerate(RUNS)}
        for _ in range(args.rounds or (1 if args.quick else 3)):
            for name, (backend, workers) in RUNS.items():
                rates[name].append(measure(backend, workers, epochs, weights[name]))
        reference = next(iter(RUNS))
        differences = {name: max_weight_difference(weights[reference], weights[name]) for name in RUNS}

    best_plain = max(rates[reference])
    print(f"ResNet-20, digits 16×16, global batch {cfg.batch_size}, {epochs} epochs (first excluded), 2 CPU cores, "
          f"{len(rates[reference])} rounds")  # fmt: skip
    print(f"{'run':40s} {'best':>8s} {'median':>8s}  samples/s   best/reference   max |Δweight| vs reference")
    for name, values in rates.items():
        print(f"{name:40s} {max(values):8.0f} {median(values):8.0f}              {max(values) / best_plain:5.3f}"
              f"            {differences[name]:.1e}")  # fmt: skip
    one_worker = [name for name, (backend, workers) in RUNS.items() if not backend.startswith("plain") and workers == 1]
    overhead = 1 - max(max(rates[name]) for name in one_worker) / best_plain
    print(f"engine overhead at 1 worker (best backend, best rounds): {100 * overhead:.1f} %  (target ≤ 5 %)")


if __name__ == "__main__":
    main()
