"""Paths are resolved once, where a command starts: nothing a trial or worker does depends on its working directory."""

from pathlib import Path


def absolute(path: str | Path | None) -> Path | None:
    """`path` made absolute against this process's working directory (`~` expanded); None stays None.

    Call it where a config or a flag is built (the driver): Ray Tune changes a trial's working directory, and
    Ray Train and torchrun workers may start elsewhere, so a relative path must not reach them.
    """
    return None if path is None else Path(path).expanduser().absolute()
