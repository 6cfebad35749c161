"""Digests of files and configs: what names a shard, a generator, a weight file or a cache entry."""

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

CHUNK_BYTES = 1 << 20

# Bytes hashed by `sha256_of` in this process, by file suffix (".tar", ".idx", ".json", ...): what tests and
# benchmarks read to show that a job trusts a recorded verification instead of re-hashing its shards.
bytes_hashed: Counter[str] = Counter()


def sha256_of(file: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            bytes_hashed[Path(file).suffix] += len(chunk)
    return digest.hexdigest()


def to_dict(cfg: object) -> dict:
    """JSON-ready nested dict of a config (Paths as strings, tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def digest(*parts: object) -> str:
    """Short stable hash of configs and values: the cache key of everything they determine."""
    text = json.dumps([to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
