"""Training checkpoints (every engine, the data position, each rank's RNG state) written atomically and resumed
from; files read back without running code (`load_plain`)."""

import os
import shutil
from pathlib import Path

import torch

from distgan.errors import DataError
from distgan.runtime import distributed
from distgan.runtime.atomic import load_plain, write_text_atomic

LATEST_NAME = "latest"  # text file naming the newest complete checkpoint directory
KEEP_CHECKPOINTS = 2


def save_training_checkpoint(root: Path, step: int, engines: dict, *, position: dict, rank_state: dict) -> None:
    """Checkpoint every engine (each through its backend), the data position and this rank's RNG states.

    All ranks call it. It is written under a temporary name, renamed, and only then named in
    `latest`: a run killed at any moment resumes from the last complete checkpoint.
    """
    tag = f"step{step:09d}"
    tmp = root / f".{tag}.tmp"  # one per job (its ranks all write into it); a killed run's is cleared below
    if distributed.rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    distributed.barrier()
    for name, engine in engines.items():
        engine.save(tmp / name)
    torch.save({"position": position, "rank_state": rank_state}, tmp / f"rank{distributed.rank()}.pt")
    distributed.barrier()
    if distributed.rank() == 0:
        # A directory of this step that `latest` does not name was left by a run killed between the two renames
        # below; this run redid the step (it resumed from the one before) and replaces it.
        shutil.rmtree(root / tag, ignore_errors=True)
        os.replace(tmp, root / tag)
        write_text_atomic(root / LATEST_NAME, tag + "\n")
        for old in sorted(root.glob("step*"))[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()


def load_training_checkpoint(root: Path | None, engines: dict) -> tuple[dict, dict] | None:
    """Restore the engines from the newest complete checkpoint; (position, this rank's state), or None."""
    if root is None or not (root / LATEST_NAME).is_file():
        return None
    directory = root / (root / LATEST_NAME).read_text().strip()
    rank_file = directory / f"rank{distributed.rank()}.pt"
    if not rank_file.is_file():
        raise DataError(f"{rank_file} missing: the checkpoint was written by a run of another world size")
    for name, engine in engines.items():
        engine.load(directory / name)
    saved = load_plain(rank_file)
    return saved["position"], saved["rank_state"]
