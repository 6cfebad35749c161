"""Claim: real shards in JPEG are several times smaller than in PNG and decode faster on the CPU decoder, so a sweep
over ImageNet should write them as JPEG (`--data.image-format jpeg`, the ImageNet recipe's choice).

The same 256×256 RGB images (../shared/data's CIFAR-10 subset upscaled, as bench_dali_vs_pil.py does; smooth random
images when that is missing) are written as PNG shards and as JPEG shards (quality 95, 4:4:4) by distgan's writer;
then, in one run, per format: shard bytes, and decode images/s by PIL (the fallback's decoder, one process) and by
DALI's CPU pipeline (`make_loader(backend="dali")`, evaluation, no resize). Printed as JPEG ÷ PNG ratios against the
PNG reference measured in the same run. (DALI's `mixed` GPU decoder accelerates JPEG only: gpu_check times it.)

    python benchmarks/bench_png_vs_jpeg.py [--quick] [--num-images 512] [--threads 2]
"""

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED_DATA, benchmark_parser
from PIL import Image

from distgan.data.loader import dali_available, make_loader
from distgan.data.manifest import image_extension, read_manifest
from distgan.data.sources import ImageSplit, resize_NHWC
from distgan.data.wds import read_index
from distgan.data.writer import ShardOptions, write_array_shards

SIZE = 256
SHARED = SHARED_DATA / "cifar10_lossless_subset-train.npz"


def source_images(num_images: int) -> tuple[np.ndarray, str]:
    """uint8 (N, 256, 256, 3) and where they come from."""
    if SHARED.is_file():
        with np.load(SHARED) as data:
            return resize_NHWC(data["x"][:num_images], SIZE), f"{SHARED.name}, upscaled to {SIZE}²"
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 2 * np.pi, SIZE, dtype=np.float32)
    images = []
    for _ in range(num_images):  # a few low-frequency waves per channel plus mild noise: photo-like compressibility
        f = rng.uniform(0.5, 4, (3, 2))
        waves = np.sin(f[:, :1, None] * grid[None, :, None] + f[:, 1:, None] * grid[None, None, :])
        noise = rng.normal(0, 0.05, (3, SIZE, SIZE))
        images.append(((waves + noise) * 100 + 128).clip(0, 255).astype(np.uint8).transpose(1, 2, 0))
    return np.stack(images), "smooth random images (../shared/data missing)"


def encoded_members(shard_dir: Path) -> list[bytes]:
    manifest = read_manifest(shard_dir)
    ext, out = image_extension(manifest), []
    for shard in manifest["shards"]:
        data = (shard_dir / shard["name"]).read_bytes()
        out += [data[e[ext][0] : e[ext][0] + e[ext][1]] for _, e in read_index(shard_dir, shard)]
    return out


def pil_images_per_sec(members: list[bytes]) -> float:
    start = time.perf_counter()
    for data in members:
        with Image.open(io.BytesIO(data)) as pil:
            pil.load()
    return len(members) / (time.perf_counter() - start)


def dali_images_per_sec(shard_dir: Path, *, threads: int, epochs: int) -> float:
    loader = make_loader(shard_dir, batch_size=32, train=False, num_workers=threads, backend="dali")
    for _ in loader.epoch(0):  # warm-up: buffers, page cache
        pass
    start, count = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        count += sum(len(batch["labels"]) for batch in loader.epoch(epoch))
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = benchmark_parser(__doc__, quick="32 images, one timed epoch")
    parser.add_argument("--num-images", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="DALI CPU threads")
    args = parser.parse_args(argv)
    num_images, epochs = (32, 1) if args.quick else (args.num_images, 3)
    images, origin = source_images(num_images)
    split = ImageSplit(images_NHWC=images, labels_N=np.zeros(len(images), np.int64), class_names=("any",))
    print(f"{num_images} images of {SIZE}×{SIZE}×3 from {origin}; DALI CPU with {args.threads} threads")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for image_format in ("png", "jpeg"):
            out = Path(tmp) / image_format
            options = ShardOptions(image_format=image_format, jpeg_quality=95, max_samples_per_shard=256)
            manifest = write_array_shards(split, out, options=options, provenance={"kind": "benchmark"})
            row = {"shard bytes": sum(shard["num_bytes"] for shard in manifest["shards"])}
            row["PIL decode img/s"] = pil_images_per_sec(encoded_members(out))
            if dali_available():
                row["DALI cpu decode img/s"] = dali_images_per_sec(out, threads=args.threads, epochs=epochs)
            rows[image_format] = row
    png, jpeg = rows["png"], rows["jpeg"]
    print(f"{'':<24}{'PNG (reference)':>18}{'JPEG q95':>14}{'JPEG ÷ PNG':>12}")
    for name in png:
        print(f"{name:<24}{png[name]:>18,.0f}{jpeg[name]:>14,.0f}{jpeg[name] / png[name]:>11.2f}×")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
