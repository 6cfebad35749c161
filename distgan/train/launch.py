"""Run a per-worker function as a data-parallel job: Ray Train's TorchTrainer (sweeps, clusters), or
in this process as a world of size 1. The only module that imports Ray Train.

Worker functions take one job object and run on every rank after the process group exists (gloo on
CPUs, NCCL on GPUs: `distributed.collective_backend`); they report per-epoch metrics through `report`.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distgan.errors import ConfigError, DistganError
from distgan.runtime import distributed

WorkerFn = Callable[[Any], None]  # called with the job (jobs/: GanJob, ClassifierJob, SamplingJob, ScoringJob, ...)


@dataclass(kw_only=True)
class Launch:
    """Where and how wide a data-parallel job runs."""

    workers: int  # data-parallel workers (ranks)
    cpus_per_worker: float
    gpus_per_worker: float  # 0: CPU workers (gloo)
    storage_dir: Path  # Ray Train's run directory (worker logs, reported metrics)
    in_tune_trial: bool  # forward the workers' reports to the enclosing Ray Tune trial
    in_process: bool = False  # run the one worker in this process, without Ray Train (e.g. inside its Tune trial)

    def __post_init__(self) -> None:
        check_gpus_per_worker(self.workers, self.gpus_per_worker)


def check_gpus_per_worker(workers: int, gpus_per_worker: float) -> None:
    """Refuse a fraction of a GPU per worker when a job has several workers: Ray may then place two of them on one
    GPU, which NCCL cannot serve (one device per rank), and both see it as device 0. One worker may share a GPU."""
    if workers > 1 and gpus_per_worker > 0 and not float(gpus_per_worker).is_integer():
        raise ConfigError(
            f"--gpus-per-worker {gpus_per_worker:g} with --workers-per-trial {workers}: the workers of a job need "
            "whole GPUs (NCCL serves one device per rank); use a whole number, or --workers-per-trial 1"
        )


# Ray Train's controller polls its workers this often (default 2 s); a worker's report waits for the poll that
# takes the previous one, and a job's end is seen at the next poll: ~1 s per report and per job at the default.
CONTROLLER_POLL_INTERVAL_S = "0.1"
# Where a worker's reports go, said once by whoever runs it: `ray.train.report` in a Ray Train worker (Tune sees
# them through TuneReportCallback), `tune.report` for a job in its Tune trial's process, else nowhere.
_report_to: Callable[[dict], None] | None = None


def report(metrics: dict) -> None:
    """Report metrics from a worker to where its runner said (a no-op outside Ray)."""
    if _report_to is not None:
        _report_to(metrics)


def _under_ray_train(loop_config: dict) -> None:
    global _report_to
    import ray.train.torch

    _report_to = ray.train.report
    distributed.place_devices_by(ray.train.torch.get_device)  # the GPU Ray assigned (CUDA_VISIBLE_DEVICES), or CPU
    # Ray leaves torch at one thread per core for fractional-CPU workers; two such workers on two
    # cores then oversubscribe them (measured 3× slower per epoch). Use what the worker reserved.
    torch.set_num_threads(loop_config["torch_threads"])
    loop_config["fn"](loop_config["config"])


def run_data_parallel(fn: WorkerFn, config: Any, *, launch: Launch, name: str) -> None:
    """Run fn(config) on `launch.workers` Ray Train workers (or here: launch.in_process); raises if any fails."""
    if launch.in_process:
        _run_here(fn, config, launch)
        return
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    callbacks = []
    if launch.in_tune_trial:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    use_gpu = launch.gpus_per_worker > 0
    resources = {"CPU": launch.cpus_per_worker} | ({"GPU": launch.gpus_per_worker} if use_gpu else {})
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", CONTROLLER_POLL_INTERVAL_S)  # Train passes it on
    trainer = TorchTrainer(
        _under_ray_train,
        train_loop_config={"fn": fn, "config": config, "torch_threads": max(1, math.floor(launch.cpus_per_worker))},
        torch_config=TorchConfig(backend=distributed.collective_backend("cuda" if use_gpu else "cpu")),
        scaling_config=ray.train.ScalingConfig(
            num_workers=launch.workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=ray.train.RunConfig(name=name, storage_path=str(launch.storage_dir), callbacks=callbacks),
    )
    try:
        trainer.fit()
    except Exception as err:
        user_error = _user_error(err)
        if user_error is None:
            raise
        raise user_error from None  # one line naming what the user can fix, not Ray's traceback around it


def _user_error(err: BaseException) -> DistganError | None:
    """The DistganError a worker raised inside Ray Train's error (a worker group's failures, a task error's cause)."""
    seen, pending = set(), [err]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, DistganError):
            return error
        pending += [error.__cause__, getattr(error, "cause", None), *getattr(error, "worker_failures", {}).values()]
    return None


def _run_here(fn: WorkerFn, config: Any, launch: Launch) -> None:
    """The one worker in this process: no process group; reports go to the enclosing Tune trial if wanted."""
    global _report_to
    if launch.workers != 1:
        raise ValueError(f"an in-process job has one worker, not {launch.workers}")
    threads = torch.get_num_threads()  # the caller's own, e.g. a driver that goes on to extract features
    torch.set_num_threads(max(1, math.floor(launch.cpus_per_worker)))
    if launch.in_tune_trial:
        from ray import tune

        _report_to = tune.report
    try:
        fn(config)
    finally:
        _report_to = None
        torch.set_num_threads(threads)
