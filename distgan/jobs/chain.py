"""Jobs that run one after the other on the same workers: one worker group for a trial's scoring, training and
evaluation (a Ray Train group costs seconds to start, and the workers' devices, imports and caches stay warm)."""

from dataclasses import dataclass
from typing import Any

from distgan.train.launch import WorkerFn


@dataclass(frozen=True)
class JobChain:
    """(worker function, job) pairs, run in order on every rank."""

    steps: tuple[tuple[WorkerFn, Any], ...]


def chain_worker(chain: JobChain) -> None:
    for fn, job in chain.steps:
        fn(job)
