"""Digest-checked downloads of dataset archives, for users with network; `load_split` never calls this.

In a multi-process job call `fetch_source` on rank 0 only, then barrier (rank 0 decides downloads first).
"""

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from distgan.errors import ConfigError, DataError
from distgan.runtime.atomic import atomic_path, temporary_path
from distgan.runtime.hashing import sha256_of

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RemoteArchive:
    """A tarball whose extraction yields `extracted_dir`, the directory to pass as `--data.path`."""

    url: str
    sha256: str
    extracted_dir: str


KNOWN_ARCHIVES = {
    "cifar10": RemoteArchive(
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        extracted_dir="cifar-10-batches-py",
    ),
}


def download(url: str, dest: Path, sha256: str) -> Path:
    """Fetch `url` to `dest` unless it is already there with this sha256; the file appears only once verified."""
    dest = Path(dest)
    if dest.is_file() and sha256_of(dest) == sha256:
        return dest
    try:
        with atomic_path(dest, suffix=".part") as tmp, tmp.open("wb") as out:  # dest appears only once verified
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=60) as response:
                while chunk := response.read(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise DataError(f"{url}: sha256 {digest.hexdigest()} does not match the expected {sha256}")
    except (urllib.error.URLError, TimeoutError) as e:
        raise DataError(f"{url}: download failed ({e})") from e
    return dest


def extract_tar(archive: Path, root: Path) -> None:
    """Extract a tarball under `root`, refusing any member whose path would land outside it."""
    root = Path(root).resolve()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not (root / member.name).resolve().is_relative_to(root):
                raise DataError(f"{archive}: member {member.name!r} would extract outside {root}")
        # The "data" filter also rejects links out of root, device files and unsafe modes.
        tar.extractall(root, filter="data")


def fetch_source(source: str, root: Path) -> Path:
    """Download and extract a known source's archive under `root`; return the directory to pass as `path`."""
    if source not in KNOWN_ARCHIVES:
        raise ConfigError(f"cannot download {source!r}; downloadable sources: {sorted(KNOWN_ARCHIVES)}")
    remote = KNOWN_ARCHIVES[source]
    root = Path(root)
    final_dir = root / remote.extracted_dir
    if final_dir.is_dir():
        return final_dir
    archive = download(remote.url, root / remote.url.rsplit("/", 1)[1], remote.sha256)
    # Extract beside final_dir (a unique name, runtime.atomic's) and rename, so an interrupted extraction never looks
    # complete.
    staging = temporary_path(final_dir)
    staging.mkdir(parents=True)
    try:
        extract_tar(archive, staging)
        if not (staging / remote.extracted_dir).is_dir():
            raise DataError(f"{archive}: expected a top-level {remote.extracted_dir}/ directory")
        os.replace(staging / remote.extracted_dir, final_dir)
    finally:
        shutil.rmtree(staging)
    return final_dir
