"""Where a job's ranks ran and for how long: one record per stage (`sample`, `score`, `train`, `evaluate`), written by
rank 0 beside the job's outputs and copied into the trial's `result.json` under "stages"."""

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distgan.layout import stage_file
from distgan.runtime import distributed
from distgan.runtime.atomic import write_json_atomic

STAGES = ("sample", "score", "train", "evaluate")  # result.json's "stages", in the order a trial runs them


def rank_identity() -> dict:
    """This rank: its number, host, process and device."""
    return {"rank": distributed.rank(), "host": socket.gethostname(), "pid": os.getpid(),
            "device": str(distributed.local_device())}  # fmt: skip


@contextmanager
def recorded_stage(out_dir: Path, stage: str) -> Iterator[None]:
    """Time the block on every rank; then (collective) gather each rank's identity, and rank 0 writes
    `stages/<stage>.json`: {"world_size", "ranks": [{"rank", "host", "pid", "device"}, ...], "wall_time_s"}."""
    assert stage in STAGES, stage
    started = time.perf_counter()
    yield
    wall_time_s = time.perf_counter() - started
    ranks = distributed.all_gather_objects(rank_identity())
    if distributed.rank() == 0:
        record = {"world_size": distributed.world_size(), "ranks": ranks, "wall_time_s": wall_time_s}
        write_json_atomic(stage_file(out_dir, stage), record)


def read_stages(out_dir: Path, stages: tuple[str, ...] = STAGES) -> dict:
    """{stage: record} of those of `stages` recorded in out_dir."""
    records = {}
    for stage in stages:
        path = stage_file(out_dir, stage)
        if path.is_file():
            records[stage] = json.loads(path.read_text())
    return records
