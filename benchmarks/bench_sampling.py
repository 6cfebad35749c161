"""Sampling into shards against the generator alone: images/s of `sample_to_shards` (generation, PNG encoding, tar
writing, digests) over images/s of the same generator's `sample` calls, same batches, same run.

Claim: encoding and writing overlap generation, so writing shards costs little beside the generator (ratio ≥ 0.8).
    python benchmarks/bench_sampling.py [--quick] [--image-size 32] [--device cpu|cuda]
Generator: distgan's ConditionalGenerator (random weights; the cost of a forward does not depend on them), opened by
the `distgan` generator kind, sampled at τ = 1. The encoding processes come from a fork server (sampling.py), started
in the warm-up as a sampling worker's first set starts it. Both sides run in pairs (alone, then shards) so that each
ratio compares runs under the same machine load; CPU time per image (this process and the encoding processes) is printed
beside the rates, as the cost that does not depend on the load.
"""

import os
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch
from common import benchmark_parser

from distgan.config import GanConfig
from distgan.generators import LoadedGenerator, open_generator
from distgan.generators.sampling import ENCODING_CONTEXT, default_encode_workers, sample_to_shards
from distgan.models.gan import ConditionalGenerator
from distgan.train.gan import save_generator

NUM_CLASSES = 10


def open_random_gan(out: Path, args) -> LoadedGenerator:
    """distgan's ConditionalGenerator with random weights (a forward costs the same), opened as the sweep opens one:
    `--generator.kind distgan --generator.weights generator.pt`."""
    torch.manual_seed(0)
    gan = GanConfig(latent_dim=128, g_width=args.width)
    net = ConditionalGenerator(
        latent_dim=gan.latent_dim,
        num_classes=NUM_CLASSES,
        image_size=args.image_size,
        channels=3,
        base_width=args.width,
    )
    save_generator(out, net, gan, image_size=args.image_size, channels=3)
    return open_generator("distgan", weights=out, num_classes=NUM_CLASSES, device=torch.device(args.device))


def encoding_server_pid() -> int:
    """The fork server's pid: the parent of every encoding process (started by the warm-up)."""
    with ProcessPoolExecutor(1, mp_context=ENCODING_CONTEXT) as pool:
        return pool.submit(os.getppid).result()


def cpu_seconds(server_pid: int) -> float:
    """CPU time of this process, of its finished children, and of the encoding processes the fork server has reaped
    (its children, not this process's: /proc's cutime and cstime of the server)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    server_fields = Path(f"/proc/{server_pid}/stat").read_text().rpartition(")")[2].split()
    reaped_ticks = int(server_fields[13]) + int(server_fields[14])  # stat fields 16, 17 (cutime, cstime)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + reaped_ticks / os.sysconf("SC_CLK_TCK")


def timed(run, num_images: int, server_pid: int) -> tuple[float, float]:
    """(images/s of wall time, CPU ms per image) of run()."""
    wall, cpu = time.perf_counter(), cpu_seconds(server_pid)
    run()
    return num_images / (time.perf_counter() - wall), 1000 * (cpu_seconds(server_pid) - cpu) / num_images


def generate(loaded: LoadedGenerator, labels_N: np.ndarray, batch_size: int) -> None:
    """The reference: the generator's own `sample` calls on the same batches, nothing checked, copied or written."""
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for first in range(0, len(labels_N), batch_size):
            images = loaded.generator.sample(torch.from_numpy(labels_N[first : first + batch_size]), 1.0, rng)
    if images.is_cuda:
        torch.cuda.synchronize()


def write_shards(loaded: LoadedGenerator, labels_N: np.ndarray, out: Path, args) -> None:
    sample_to_shards(
        loaded,
        labels_N,
        tuple(map(str, range(NUM_CLASSES))),
        1.0,
        seed=0,
        out_dir=out,
        shard_size=args.shard_size,
        provenance={"kind": "benchmark"},
        batch_size=args.batch_size,
        encode_workers=args.encode_workers,
    )


def main() -> None:
    parser = benchmark_parser(__doc__, "1,024 images, 1 repeat (a smoke run)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="generator channels at full resolution")
    parser.add_argument("--num-images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=1024)
    parser.add_argument("--encode-workers", type=int, default=None, help="default: sample_to_shards' own")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (generator alone, then shards)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    num_images, repeats = (1024, 1) if args.quick else (args.num_images, args.repeats)
    labels_N = np.random.default_rng(0).integers(0, NUM_CLASSES, num_images)
    alone, shards = [], []
    with tempfile.TemporaryDirectory() as tmp:
        gen = open_random_gan(Path(tmp) / "generator.pt", args)
        generate(gen, labels_N[: args.batch_size], args.batch_size)  # warm-up: allocator, kernels
        # ... and the encoders' fork server, started once per process (a sampling worker's first set pays it).
        write_shards(gen, labels_N[: args.batch_size], Path(tmp) / "warm-up", args)
        server_pid = encoding_server_pid()
        for repeat in range(repeats):  # in pairs, so that each ratio compares runs under the same machine load
            alone.append(timed(partial(generate, gen, labels_N, args.batch_size), num_images, server_pid))
            write = partial(write_shards, gen, labels_N, Path(tmp) / f"{repeat}", args)
            shards.append(timed(write, num_images, server_pid))
    workers = args.encode_workers or default_encode_workers()
    print(
        f"{num_images} images {args.image_size}×{args.image_size}×3, batch {args.batch_size}, shards of "
        f"{args.shard_size}, device {args.device}, {torch.get_num_threads()} torch threads, {workers} encode workers, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for name, measured in (("generator alone (sample calls)", alone), ("sample_to_shards (PNG shards)", shards)):
        rates, cpu_ms = zip(*measured, strict=True)
        print(f"{name:31s} {runs(rates)} images/s; CPU {runs(cpu_ms, '.2f')} ms/image")
    ratios = [s[0] / a[0] for s, a in zip(shards, alone, strict=True)]
    print(
        f"ratio shards / generator alone: {runs(ratios, '.3f')}; median {statistics.median(ratios):.3f} (target ≥ 0.8)"
    )


def runs(values: list[float], spec: str = ".1f") -> str:
    return ", ".join(f"{value:{spec}}" for value in values)


if __name__ == "__main__":
    main()
