"""Verify once: a shard set's digests are checked when it is published or first used, and the result is recorded.

`verified.json` beside the manifest names the manifest's sha256, each verified file's (size, mtime_ns) when it was
hashed, and the shards whose digest (or whose index's) differed. A reader trusts the record while the manifest
digest and every file's size and mtime are unchanged; a file whose stat changed is hashed again (only that one),
a set without a valid record is hashed whole, once, and the record written. At ImageNet scale this is the
difference between 170 GB hashed per rank per job and a manifest hashed (~100 kB) plus a stat per shard.

What the record does not catch: bytes changed in place with size and mtime restored. Those surface as a decode
error naming the shard and key where the image no longer decodes; bytes that still decode go unnoticed until
`ensure_verified(force=True)` hashes everything again.
"""

import json
import logging
from pathlib import Path

from distgan.data.manifest import MANIFEST_NAME, manifest_digest, read_manifest
from distgan.runtime.atomic import write_json_atomic
from distgan.runtime.hashing import sha256_of

VERIFIED_NAME = "verified.json"
_log = logging.getLogger(__name__)


def _stat(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _checked_files(manifest: dict) -> list[tuple[str, str, str]]:
    """(file name, expected sha256, what it belongs to: a shard or the labels file) of each file with a digest."""
    files = []
    for shard in manifest["shards"]:
        files.append((shard["name"], shard["sha256"], shard["name"]))
        if "index" in shard:
            files.append((shard["index"], shard["index_sha256"], shard["name"]))
    if "labels" in manifest:
        files.append((manifest["labels"]["name"], manifest["labels"]["sha256"], manifest["labels"]["name"]))
    return files


def published_record(shard_dir: Path, manifest: dict) -> dict:
    """The record of a set whose writer has just computed its digests from the bytes it wrote (publication)."""
    shard_dir = Path(shard_dir)
    stats = {name: _stat(shard_dir / name) for name, _, _ in _checked_files(manifest)}
    return {"manifest_sha256": manifest_digest(shard_dir), "files": stats, "bad": {}}


def write_record(shard_dir: Path, record: dict, *, name: str = VERIFIED_NAME) -> None:
    """Write a record (verified.json) beside a manifest, atomically; a read-only set (a user's published dataset)
    keeps none: the check is then repeated next time, which the warning says."""
    try:
        write_json_atomic(Path(shard_dir) / name, record)
    except OSError as err:
        _log.warning("%s: cannot record the verification (%s); it will be repeated next time", shard_dir, err)


def _read_record(shard_dir: Path) -> dict | None:
    path = Path(shard_dir) / VERIFIED_NAME
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if {"manifest_sha256", "files", "bad"} <= set(record) else None


def ensure_verified(shard_dir: Path, *, force: bool = False) -> dict:
    """The set's verification record, hashing only what is not covered by a valid one (everything if `force`).

    Returns {"manifest_sha256", "files": {name: [size, mtime_ns]}, "bad": {shard or labels file: the file that
    failed}}; the caller decides what a bad shard means (an error, or skipped under --on-bad-sample skip). A missing
    shard is not recorded as bad: the reader, which needs the file anyway, names it.
    """
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    digest = manifest_digest(shard_dir)
    old = None if force else _read_record(shard_dir)
    if old is not None and old["manifest_sha256"] != digest:
        old = None
    files, bad, hashed = {}, {}, 0
    for name, expected, shard in _checked_files(manifest):
        stat = _stat(shard_dir / name)
        if old is not None and stat is not None and old["files"].get(name) == stat:
            files[name] = stat
            if old["bad"].get(shard) == name:
                bad[shard] = name
            continue
        if stat is None and name == shard:
            continue  # a missing shard: the reader names it
        hashed += 1
        if stat is None or sha256_of(shard_dir / name) != expected:
            bad.setdefault(shard, name)
        files[name] = stat
    record = {"manifest_sha256": digest, "files": files, "bad": bad}
    if hashed or old is None:
        write_record(shard_dir, record)
    return record


def bad_reason(shard_dir: Path, shard: str, record: dict, *, with_index: bool = True) -> str | None:
    """Why `shard` (a shard or the labels file) failed verification, naming the file; None when it passed (or only
    its index failed and `with_index` is False: a sequential reader does not use the index)."""
    file = record["bad"].get(shard)
    if file is None or (file != shard and not with_index):
        return None
    if file == shard and file.endswith(".tar"):
        return f"{shard_dir}/{file}: sha256 differs from {MANIFEST_NAME} (corrupt or changed shard)"
    return f"{shard_dir}/{file}: {'index ' if file != shard else ''}missing or sha256 differs from {MANIFEST_NAME}"
