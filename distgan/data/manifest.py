"""The manifest of a shard directory (`manifest.json`): what is inside, each shard's sha256, and who made it."""

import json
from pathlib import Path

from distgan.errors import DataError
from distgan.runtime.hashing import sha256_of

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2  # 1: PNG + .cls only, no index files; 2 adds .lbl, .idx, JPEG, byte limits
IMAGE_EXTENSIONS = {"png": "png", "jpeg": "jpg"}  # image_format → member extension


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
