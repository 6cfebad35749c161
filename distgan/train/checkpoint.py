"""Atomic files and cached directories: written under a temporary name, then renamed (STYLE §10)."""

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch


def save_atomic(payload: dict, path: Path) -> None:
    """torch.save to a temporary name beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def build_cached_dir(path: Path, build: Callable[[Path], None]) -> bool:
    """Make directory `path` by build(tmp_dir) then a rename, unless it exists; True if it was built."""
    if path.is_dir():
        return False
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    try:
        os.replace(tmp, path)
    except OSError:  # another process finished the same artifact first; keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True
