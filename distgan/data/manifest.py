"""The manifest of a shard directory (`manifest.json`): what is inside, each shard's sha256, and who made it."""

import json
from pathlib import Path

import numpy as np

from distgan.errors import DataError
from distgan.runtime.hashing import sha256_of

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2  # 1: PNG + .cls only, no index files; 2 adds .lbl, .idx, JPEG, byte limits
IMAGE_EXTENSIONS = {"png": "png", "jpeg": "jpg"}  # image_format → member extension
LABELS_NAME = "labels.npy"  # int32 class of every sample in set order: label scans read this, not the shards


def shuffled_order(num_samples: int, seed: int) -> np.ndarray:
    """The order a shuffled set is written in: its sample i is source sample `order[i]` (and its key that index).

    Real sources list samples class by class (an image folder, sorted); DALI hands each rank a contiguous slice and
    shuffles in a small buffer, so written in source order a batch would hold one or two classes."""
    return np.random.default_rng(seed).permutation(num_samples)


def order_record(seed: int | None) -> dict:
    """The manifest's "order": how sample positions relate to the source's (the key is always the source index)."""
    if seed is None:
        return {"shuffle_seed": None, "rule": "source order: sample i is source sample i (its key)"}
    rule = "permutation: sample i is source sample numpy.random.default_rng(shuffle_seed).permutation(num_samples)[i]"
    return {"shuffle_seed": seed, "rule": rule + " (its key, %08d)"}


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


def image_extension(manifest: dict) -> str:
    """Tar member extension of the images of a shard set (format 1 manifests are PNG)."""
    return IMAGE_EXTENSIONS[manifest.get("image_format", "png")]
