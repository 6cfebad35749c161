"""A real train/test pair must not share images: a classifier tested on its own training images is scored on
memory, silently. Images are compared by a digest of their encoded bytes in the shards, which the writer makes
byte-stable (the same pixels and options give the same PNG or JPEG bytes).

The check runs once per pair of sets: its outcome is recorded beside the test set's manifest, named by both
manifests' digests (which name every shard's content), so a sweep's every start costs two manifest hashes. The
images are hashed by a thread pool, one shard per task (hashlib releases the GIL on buffers over 2 kB; the tar
reading is I/O)."""

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from distgan.data.manifest import image_extension, manifest_digest, read_manifest
from distgan.data.shards import iterate_tar
from distgan.data.verify import write_record
from distgan.errors import DataError

MAX_THREADS = 32


def _shard_digests(path: Path, ext: str) -> list[tuple[bytes, str]]:
    return [
        (hashlib.blake2b(entries[ext], digest_size=16).digest(), key)
        for key, entries in iterate_tar(path)
        if ext in entries
    ]


def image_digests(shard_dir: Path) -> dict[bytes, str]:
    """{16-byte blake2b digest of a sample's encoded image: its key} over every shard of a directory."""
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    ext = image_extension(manifest)
    paths = [shard_dir / shard["name"] for shard in manifest["shards"]]
    digests: dict[bytes, str] = {}
    with ThreadPoolExecutor(max(1, min(MAX_THREADS, os.cpu_count() or 1, len(paths)))) as pool:
        for pairs in pool.map(lambda path: _shard_digests(path, ext), paths):  # in shard order: first key wins
            for digest, key in pairs:
                digests.setdefault(digest, key)
    return digests


def is_real(shard_dir: Path) -> bool:
    """Whether a shard directory holds real images (its manifest's provenance says so)."""
    return read_manifest(shard_dir).get("provenance", {}).get("kind") == "real"


def _record_path(train_digest: str, test_dir: Path) -> Path:
    return Path(test_dir) / f"overlap-{train_digest[:16]}.json"


def refuse_shared_images(train_dir: Path, test_dir: Path) -> None:
    """DataError naming both directories when any image of `test_dir` is also in `train_dir` (once per pair of
    manifests: the outcome is recorded beside the test manifest)."""
    train_digest, test_digest = manifest_digest(train_dir), manifest_digest(test_dir)
    record_path = _record_path(train_digest, test_dir)
    try:
        record = json.loads(record_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        record = None
    if record is None or record.get("manifests") != [train_digest, test_digest]:
        train = image_digests(train_dir)
        shared = [(train[digest], key) for digest, key in image_digests(test_dir).items() if digest in train]
        record = {"manifests": [train_digest, test_digest], "num_shared": len(shared), "examples": shared[:3]}
        write_record(Path(test_dir), record, name=record_path.name)
    if record["num_shared"]:
        examples = ", ".join(f"train {a} = test {b}" for a, b in record["examples"])
        raise DataError(
            f"{train_dir} and {test_dir} share {record['num_shared']} image(s) (e.g. {examples}): a classifier would "
            "be tested on its own training data; give a test split disjoint from the training split"
        )
