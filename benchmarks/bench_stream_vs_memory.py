"""The classifier loop streaming its shards (DALI, and the webdataset+PIL fallback) against the same loop
reading them from memory: samples/s of `train_classifier` on the same 32×32 PNG shards, same run.

Claim: streaming through DALI costs little against decoded arrays in memory (ratio near 1 where the
model's compute dominates, as it does for any real classifier); the PIL fallback is shown beside it.
    python benchmarks/bench_stream_vs_memory.py [--quick] [--arch small_cnn]
Data: the CIFAR-10 subset of ../shared/data (4,000 × 32×32×3), else digits resized to 32×32.
Timing excludes start-up and the first epoch (warm-up): it is taken between epoch ends.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import SHARED_DATA, benchmark_parser

from distgan.config import ClassifierConfig
from distgan.data.manifest import read_manifest
from distgan.data.shards import read_shards
from distgan.train.batches import ShardSource
from distgan.train.classifier import train_classifier

CIFAR = SHARED_DATA / "cifar10_lossless_subset"


def prepare_shards(out: Path) -> str:
    """32×32 PNG train shards in out/train; returns what they hold."""
    if Path(f"{CIFAR}-train.npz").is_file():
        command, what = ["npz", "--path", str(CIFAR)], "CIFAR-10 subset 4,000 × 32×32×3"
    else:
        command, what = ["digits", "--image-size", "32"], "digits 1,437 × 32×32×1 (shared CIFAR-10 subset missing)"
    command = [
        sys.executable,
        "-m",
        "distgan.cli",
        "prepare",
        *command,
        "--out",
        str(out),
        "--shard-max-samples",
        "1000",
    ]
    subprocess.run(command, check=True, capture_output=True)
    return what


def samples_per_sec(cfg: ClassifierConfig, data, num_samples: int) -> float:
    epoch_ends = []
    train_classifier(cfg, data, num_classes=10, on_epoch_end=lambda epoch, _: epoch_ends.append(time.perf_counter()))
    return (cfg.epochs - 1) * num_samples / (epoch_ends[-1] - epoch_ends[0])


def main() -> None:
    parser = benchmark_parser(__doc__, "3 epochs instead of 5")
    parser.add_argument("--arch", default="resnet20", help="classifier (small_cnn makes the input path matter more)")
    parser.add_argument("--workers", type=int, default=2, help="DALI threads / DataLoader processes")
    args = parser.parse_args()
    epochs = 3 if args.quick else 5
    cfg = ClassifierConfig(arch=args.arch, epochs=epochs, batch_size=128)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        what = prepare_shards(Path(tmp))
        train_dir = Path(tmp) / "train"
        num_samples = read_manifest(train_dir)["num_samples"]
        memory = samples_per_sec(cfg, read_shards(train_dir), num_samples)
        rows = [("memory (reference)", memory)]
        for backend in ("dali", "pil"):
            source = ShardSource(shard_dir=train_dir, backend=backend, num_workers=args.workers)
            rows.append((f"stream {backend}, {args.workers} workers", samples_per_sec(cfg, source, num_samples)))
    print(f"{args.arch}, {what}, PNG shards, batch {cfg.batch_size}, {epochs} epochs (first excluded), 2 CPU cores")
    for name, rate in rows:
        print(f"{name:32s} {rate:8.0f} samples/s   ratio to memory {rate / memory:5.2f}")


if __name__ == "__main__":
    main()
