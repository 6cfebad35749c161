"""A real train/test pair must not share images: a classifier tested on its own training images is scored on
memory, silently. Images are compared by a digest of their encoded bytes in the shards, which the writer makes
byte-stable (the same pixels and options give the same PNG or JPEG bytes)."""

import hashlib
from pathlib import Path

from distgan.data.manifest import image_extension, read_manifest
from distgan.data.shards import iterate_tar
from distgan.errors import DataError


def image_digests(shard_dir: Path) -> dict[bytes, str]:
    """{16-byte blake2b digest of a sample's encoded image: its key} over every shard of a directory."""
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    ext = image_extension(manifest)
    digests: dict[bytes, str] = {}
    for shard in manifest["shards"]:
        for key, entries in iterate_tar(shard_dir / shard["name"]):
            if ext in entries:
                digests.setdefault(hashlib.blake2b(entries[ext], digest_size=16).digest(), key)
    return digests


def is_real(shard_dir: Path) -> bool:
    """Whether a shard directory holds real images (its manifest's provenance says so)."""
    return read_manifest(shard_dir).get("provenance", {}).get("kind") == "real"


def refuse_shared_images(train_dir: Path, test_dir: Path) -> None:
    """DataError naming both directories when any image of `test_dir` is also in `train_dir`."""
    train = image_digests(train_dir)
    shared = [(train[digest], key) for digest, key in image_digests(test_dir).items() if digest in train]
    if shared:
        examples = ", ".join(f"train {a} = test {b}" for a, b in shared[:3])
        raise DataError(
            f"{train_dir} and {test_dir} share {len(shared)} image(s) (e.g. {examples}): a classifier would be "
            "tested on its own training data; give a test split disjoint from the training split"
        )
