"""Digests of files: what names a shard, a generator, a weight file or a cache entry."""

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20


def sha256_of(file: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
