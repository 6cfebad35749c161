"""Files and directories appear whole or not at all, so that no reader sees a half-written one: written under a
temporary name beside the final one, then renamed over it; torch files are read back without running code
(`load_plain`). Temporary names are unique (host, PID and a random part), so that two processes, or two nodes whose
processes share a PID on shared storage, never write into the same one; none is deleted on start, since another
writer's may be in progress."""

import fcntl
import json
import os
import pickle
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from distgan.errors import DataError


def temporary_path(path: Path, suffix: str = "") -> Path:
    """A unique hidden name beside `path` (suffix: what a writer infers the format from, e.g. '.png')."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write `path` at; renamed over `path` when the block ends, removed if it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Indented JSON with sorted keys (files a person reads and diffs)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_torch_atomic(payload: dict, path: Path) -> None:
    """torch.save of tensors and plain values, the only content `load_plain` reads back."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on file `path` (flock: released if the holder dies), held while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def locked_if_free(path: Path) -> Iterator[bool]:
    """The exclusive lock on file `path` if no process holds it: True, held while the block runs; else False at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def maker_lock(path: Path) -> Path:
    """The lock beside `path` that whoever makes it holds (`made_once`)."""
    return path.with_name(f".{path.name}.lock")


def made_once(path: Path, make: Callable[[], None]) -> bool:
    """Run make(), which publishes `path` whole, unless `path` exists; True if this call made it. Concurrent callers
    (trials, ranks of other jobs) wait for one maker on a lock beside `path`, then find it made."""
    if path.exists():
        return False
    with locked(maker_lock(path)):
        if path.exists():  # made by another process while this one waited
            return False
        make()
    return True


def build_cached_dir(path: Path, build: Callable[[Path], None]) -> bool:
    """Make directory `path` by build(tmp_dir) then a rename, unless it exists; True if this call built it."""

    def make() -> None:
        with atomic_path(path) as tmp:
            tmp.mkdir()
            build(tmp)

    return made_once(path, make)


def load_plain(path: Path) -> dict:
    """A file of tensors and plain values (dicts, lists, tuples, strings, numbers), as `save_torch_atomic` writes them.
    torch's weights-only unpickler refuses anything else before it is built: a pickle can run code when loaded
    (a generator.pt or checkpoint from elsewhere)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f"an object of {named.group(1)}" if named else "an object that is not a tensor or plain value"
        raise DataError(f"{path}: refused to load {what}: distgan's files hold only tensors and plain values") from None
