"""Paths are resolved once, where a command starts: nothing a trial or worker does depends on its working directory."""

from pathlib import Path


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
