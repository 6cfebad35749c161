"""Paths are resolved once, where a command starts: nothing a trial or worker does depends on its working directory."""

import socket
from pathlib import Path

from distgan.errors import DistganError


def absolute(path: str | Path | None) -> Path | None:
    """`path` made absolute against this process's working directory (`~` expanded); None stays None.

    Call it where a config or a flag is built (the driver): Ray Tune changes a trial's working directory, and
    Ray Train and torchrun workers may start elsewhere, so a relative path must not reach them.
    """
    return None if path is None else Path(path).expanduser().absolute()


def absolute_target(kind: str, target: str | None) -> str | None:
    """--generator.target of a generator `kind` with its path made absolute: the samples DIR, the torchscript file,
    the file of a python `file.py:function`; a python module name and the other kinds' targets are left as is."""
    if target is None or kind not in ("samples", "torchscript", "python"):
        return target
    if kind != "python":
        return str(absolute(target))
    where, colon, function = target.rpartition(":")
    if colon and (where.endswith(".py") or "/" in where):
        return f"{absolute(where)}:{function}"
    return target


def require_visible(token_file: Path, token: str) -> None:
    """DistganError unless this process sees `token_file` holding `token`, which the sweep's driver wrote under the
    results directory: every node of a cluster must see that directory (a shared filesystem), or its trials and jobs
    would write where no other node reads."""
    seen = token_file.read_text().strip() if token_file.is_file() else None
    if seen != token:
        found = "missing" if seen is None else "another sweep's"
        raise DistganError(
            f"{token_file.parent} is not shared with host {socket.gethostname()} ({token_file.name} {found}): every "
            "node must see the results directory (a shared filesystem: docs/reproduce.md)"
        )
