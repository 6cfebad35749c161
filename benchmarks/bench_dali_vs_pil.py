"""Claim: the DALI CPU pipeline reads training batches ≥ 3× faster than the webdataset+PIL fallback.

Same shards, same number of workers (DALI threads vs webdataset WebLoader processes), same batch size,
same augmentation (decode → pad 4 + random crop + flip → normalise to CHW float), in one run. Three
readers, each against the reference, the fallback (`make_loader(backend="pil")`: webdataset reading by
index in distgan's exact distributed order), measured in the same run:
  - DALI: `make_loader(backend="dali")`;
  - webdataset streaming: webdataset's own sequential pipeline on the same shards (WebDataset → split_by_worker
    → shuffle(1000) → decode → to_tuple → batched, in a WebLoader), which cannot keep distgan's order: what
    reading by index costs or saves against it.
Two shard sets from ../shared/data's CIFAR-10 subset: 32×32 PNG and 224×224 JPEG (upscaled, quality 90).
Then a profile of where DALI and the fallback spend their time.

    python benchmarks/bench_dali_vs_pil.py [--quick] [--workers 2] [--batch-size 64]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from common import SHARED_DATA, benchmark_parser

from distgan.data.loader import make_loader
from distgan.data.manifest import image_extension, read_manifest
from distgan.data.sources import ImageSplit, load_split, resize_NHWC
from distgan.data.wds import IMAGE_SPECS, ShardSamples, augment
from distgan.data.writer import ShardOptions, write_array_shards

SHARED = SHARED_DATA / "cifar10_lossless_subset-train.npz"


def images_per_sec(loader, epochs: int) -> float:
    for _ in loader.epoch(0):  # warm-up epoch: worker start-up, DALI buffers, page cache
        pass
    start, count = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        for batch in loader.epoch(epoch):
            count += len(batch["labels"])
    return count / (time.perf_counter() - start)


def _augment_chw(image_HWC: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng()  # the streaming reference's draws need not be reproducible
    image_HWC = augment(image_HWC.reshape(*image_HWC.shape[:2], -1), padding=4, flip=True, rng=rng)
    return np.ascontiguousarray(image_HWC.transpose(2, 0, 1))


class StreamingWebDataset:
    """webdataset's own streaming pipeline over the shards (whole shards per worker, a sample shuffle buffer)."""

    def __init__(self, shard_dir: Path, *, batch_size: int, workers: int):
        manifest = read_manifest(shard_dir)
        ext, spec = image_extension(manifest), IMAGE_SPECS[manifest["image_shape_HWC"][2]]
        urls = [str(shard_dir / shard["name"]) for shard in manifest["shards"]]
        dataset = (
            wds.WebDataset(urls, shardshuffle=False, nodesplitter=None, workersplitter=wds.split_by_worker)
            .shuffle(1000)
            .decode(spec)
            .to_tuple(ext, "cls")
            .map_tuple(_augment_chw, None)
            .batched(batch_size)
        )
        self.loader = wds.WebLoader(dataset, batch_size=None, num_workers=workers, persistent_workers=workers > 0)

    def epoch(self, epoch: int):
        del epoch  # not seeded by epoch: a throughput reference only
        for images, labels in self.loader:
            yield {"images": torch.as_tensor(images).float().div_(127.5).sub_(1.0), "labels": torch.as_tensor(labels)}


def dali_stage_rates(shard_dir: Path, batch_size: int, workers: int) -> dict:
    """Images/s of DALI reading only, reading + decoding, and the full pipeline: which stage limits it."""
    from nvidia.dali import fn, pipeline_def, types

    manifest = read_manifest(shard_dir)
    shards = manifest["shards"]
    rates = {}
    for stage in ("read", "read+decode"):

        @pipeline_def(batch_size=batch_size, num_threads=workers, device_id=None)
        def pipe():
            encoded, labels = fn.readers.webdataset(
                paths=[str(shard_dir / s["name"]) for s in shards],
                index_paths=[str(shard_dir / s["index"]) for s in shards],
                ext=[image_extension(manifest), "lbl"],
                dtypes=[types.UINT8, types.INT32],
                name="reader",
            )
            out = encoded if stage == "read" else fn.decoders.image(encoded, device="cpu")  # noqa: B023
            return out, labels

        pipeline = pipe()
        pipeline.build()
        iterations = -(-pipeline.epoch_size("reader") // batch_size)
        for _ in range(iterations):  # warm-up epoch
            pipeline.run()
        start, count = time.perf_counter(), 0
        for _ in range(iterations):
            count += len(pipeline.run()[1])
        rates[stage] = count / (time.perf_counter() - start)
    return rates


def pil_profile(shard_dir: Path, num: int) -> tuple[float, str]:
    """Per-sample cost of each step a fallback worker runs (one process, timed step by step)."""
    samples = ShardSamples(
        shard_dir, shards=read_manifest(shard_dir)["shards"], train=True, image_size=None, padding=4, flip=True,
        batch_size=64, rank=0, world_size=1, seed=0, last="pad", shuffle=True,
    )  # fmt: skip
    torch.set_num_threads(1)  # as in a DataLoader worker process
    steps = dict.fromkeys(("read by .idx offset", "webdataset decode", "augment (numpy)", "to tensor + normalise"), 0.0)
    num = min(num, samples.num_samples)
    for i in range(num):
        t0 = time.perf_counter()
        sample = samples.read(i)
        t1 = time.perf_counter()
        image, _ = samples.decode(sample)
        t2 = time.perf_counter()
        image = augment(image, padding=4, flip=True, rng=np.random.default_rng([0, i]))
        t3 = time.perf_counter()
        torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)  # per batch
        t4 = time.perf_counter()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            steps[key] += dt
    total = sum(steps.values())
    text = ", ".join(f"{k} {1e6 * v / num:.0f} µs ({100 * v / total:.0f}%)" for k, v in steps.items())
    return num / total, text


def main() -> int:
    parser = benchmark_parser(__doc__, "fewer images and epochs (CI smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if not SHARED.is_file():
        print(f"skip: {SHARED} not found (see ../shared/data/README.md)")
        return 0
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        print("skip: NVIDIA DALI is not installed (pip install .[dali])")
        return 0
    split = load_split("npz", "train", path=SHARED.parent / "cifar10_lossless_subset")
    num_small, num_large, epochs = (2000, 256, 1) if args.quick else (4000, 1000, 3)
    small = ImageSplit(split.images_NHWC[:num_small], split.labels_N[:num_small], split.class_names)
    large = ImageSplit(resize_NHWC(split.images_NHWC[:num_large], 224), split.labels_N[:num_large], split.class_names)
    print(f"workers={args.workers} batch={args.batch_size} epochs={epochs} (after one warm-up epoch)")
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"32x32 PNG": Path(tmp) / "png32", "224x224 JPEG q90": Path(tmp) / "jpeg224"}
        jpeg = ShardOptions(image_format="jpeg", jpeg_quality=90, max_samples_per_shard=250, num_workers=args.workers)
        write_array_shards(small, sets["32x32 PNG"], options=ShardOptions(max_samples_per_shard=1000), provenance={})
        write_array_shards(large, sets["224x224 JPEG q90"], options=jpeg, provenance={})
        del split, small, large  # the loaders' worker processes are forked from this one: keep it small
        for name, shard_dir in sets.items():
            num_images = read_manifest(shard_dir)["num_samples"]
            rates = {}
            for backend in ("pil", "dali"):
                loader = make_loader(
                    shard_dir, batch_size=args.batch_size, train=True, padding=4, flip=True,
                    num_workers=args.workers, backend=backend,
                )  # fmt: skip
                rates[backend] = images_per_sec(loader, epochs)
            streaming = StreamingWebDataset(shard_dir, batch_size=args.batch_size, workers=args.workers)
            rates["streaming"] = images_per_sec(streaming, epochs)
            reference = rates["pil"]
            print(f"{name}: {num_images} images; reference: the fallback (webdataset by index) {reference:,.0f} img/s")
            print(f"  DALI {rates['dali']:,.0f} img/s: {rates['dali'] / reference:.2f}x the reference (target >= 3x)")
            print(
                f"  webdataset streaming (shard order + shuffle buffer) {rates['streaming']:,.0f} img/s: "
                f"{rates['streaming'] / reference:.2f}x the reference"
            )
            stage = dali_stage_rates(shard_dir, args.batch_size, args.workers)
            print("  DALI stages: " + ", ".join(f"{k} {v:,.0f} img/s" for k, v in stage.items()))
            one_process, text = pil_profile(shard_dir, 500 if args.quick else 2000)
            print(f"  fallback per-sample steps: {text}")
            print(
                f"  fallback: steps alone {one_process:,.0f} img/s per process, ×{args.workers} workers = "
                f"{one_process * args.workers:,.0f} img/s; the WebLoader reached {rates['pil']:,.0f} "
                "(the rest: worker IPC, collate, order)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
