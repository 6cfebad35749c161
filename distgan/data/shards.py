"""WebDataset shards of labelled images with a manifest: per-class counts and a sha256 per shard.

Layout of a shard directory:
    manifest.json                 what is inside, digests, and who made it (source, τ, seed, ...)
    shard-000000.tar ...          samples {key}.png (uint8 image) and {key}.cls (ASCII class index)
A directory appears whole or not at all: it is written under a temporary name and renamed.
"""

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from distgan.data.download import sha256_of
from distgan.data.sources import ImageSplit
from distgan.errors import DataError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def _png_bytes(image_HWC: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image_HWC[:, :, 0] if image_HWC.shape[2] == 1 else image_HWC).save(buffer, format="PNG")
    return buffer.getvalue()


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON under a temporary name in the same directory, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_shards(split: ImageSplit, out_dir: Path, *, max_samples_per_shard: int, provenance: dict) -> dict:
    """Write `split` as PNG WebDataset shards plus manifest into out_dir; returns the manifest.

    If out_dir already exists (another process finished first), it is kept and returned.
    """
    out_dir = Path(out_dir)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    num_samples = split.labels_N.shape[0]
    shards = []
    for shard_index, start in enumerate(range(0, num_samples, max_samples_per_shard)):
        name = f"shard-{shard_index:06d}.tar"
        stop = min(start + max_samples_per_shard, num_samples)
        with wds.TarWriter(str(tmp_dir / name), mtime=0.0) as sink:  # fixed mtime: byte-stable shards
            for i in range(start, stop):
                sink.write(
                    {"__key__": f"{i:08d}", "png": _png_bytes(split.images_NHWC[i]), "cls": int(split.labels_N[i])}
                )
        shards.append({"name": name, "num_samples": stop - start, "sha256": sha256_of(tmp_dir / name)})
    _, height, width, channels = split.images_NHWC.shape
    manifest = {
        "format_version": FORMAT_VERSION,
        "num_samples": num_samples,
        "image_shape_HWC": [height, width, channels],
        "class_names": list(split.class_names),
        "class_counts": np.bincount(split.labels_N, minlength=split.num_classes).tolist(),
        "shards": shards,
        "provenance": provenance,
    }
    write_json_atomic(tmp_dir / MANIFEST_NAME, manifest)
    try:
        os.replace(tmp_dir, out_dir)
    except OSError:  # out_dir exists and is not empty: a concurrent writer won; its content is equivalent
        shutil.rmtree(tmp_dir, ignore_errors=True)
        return read_manifest(out_dir)
    return manifest


def read_manifest(shard_dir: Path) -> dict:
    """The manifest of a shard directory; DataError naming the file when missing or unreadable."""
    path = Path(shard_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path}: no shard manifest (write shards with `distgan prepare`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    for key in ("num_samples", "class_names", "shards", "image_shape_HWC"):
        if key not in manifest:
            raise DataError(f"{path}: missing key {key!r}")
    return manifest


def manifest_digest(shard_dir: Path) -> str:
    """sha256 of the manifest file: names the exact content of a shard set (it lists every shard's sha256)."""
    return sha256_of(Path(shard_dir) / MANIFEST_NAME)


def read_shards(shard_dir: Path, *, verify: bool = True) -> ImageSplit:
    """Load every sample of a shard directory into memory, checking each shard's sha256 first."""
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    height, width, channels = manifest["image_shape_HWC"]
    images = np.empty((manifest["num_samples"], height, width, channels), np.uint8)
    labels = np.empty((manifest["num_samples"],), np.int64)
    filled = 0
    for shard in manifest["shards"]:
        path = shard_dir / shard["name"]
        if not path.is_file():
            raise DataError(f"{path}: shard listed in {MANIFEST_NAME} is missing")
        if verify and sha256_of(path) != shard["sha256"]:
            raise DataError(f"{path}: sha256 differs from {MANIFEST_NAME} (corrupt or changed shard)")
        start = filled
        for sample in _iterate_shard(path):
            key = sample["__key__"]
            if "png" not in sample or "cls" not in sample:
                raise DataError(f"{path} key {key}: missing {'png' if 'png' not in sample else 'cls'} entry")
            if filled >= images.shape[0]:
                raise DataError(f"{path}: more samples than the manifest's {manifest['num_samples']}")
            images[filled] = _decode_png(sample["png"], path, key, (height, width, channels))
            labels[filled] = int(sample["cls"])
            filled += 1
        if filled - start != shard["num_samples"]:
            raise DataError(f"{path}: {filled - start} samples, manifest says {shard['num_samples']}")
    return ImageSplit(images_NHWC=images, labels_N=labels, class_names=tuple(manifest["class_names"]))


def _iterate_shard(path: Path):
    try:
        # Every rank reads the whole shard: ranks split samples in memory (train.classifier.epoch_indices).
        yield from wds.WebDataset(
            str(path), shardshuffle=False, empty_check=False, nodesplitter=None, workersplitter=None
        )
    except Exception as err:  # webdataset raises tarfile/ValueError variants for truncated archives
        raise DataError(f"{path}: unreadable tar ({type(err).__name__}: {err})") from None


def _decode_png(data: bytes, path: Path, key: str, shape_HWC: tuple[int, int, int]) -> np.ndarray:
    try:
        image = np.asarray(Image.open(io.BytesIO(data)))
    except Exception as err:
        raise DataError(f"{path} key {key}: PNG cannot be decoded ({err})") from None
    image = image.reshape(*image.shape[:2], -1)
    if image.shape != tuple(shape_HWC):
        raise DataError(f"{path} key {key}: image shape {image.shape}, manifest says {tuple(shape_HWC)}")
    return image
