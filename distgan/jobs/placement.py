"""Where every data-parallel job runs and what each trial reserves: decided here, once, from the config.

Three places, one named function each:
- `sweep_jobs`: what the sweep shares (real side of each feature space, the GAN, the domain extractor), started by
  the sweep's driver before any trial;
- `trial_jobs`: a trial's own jobs (classifier training and evaluation, scoring, a GAN trial's training);
  `sampling_jobs`: a trial's synthetic set;
- `under_torchrun`: a `distgan` stage, every rank a process that torchrun (or the user) started.

A job of one worker runs in the process that wants it (a trial's own, which then holds the worker's resources, or
the driver's on this machine's CPUs); a wider one is a Ray Train TorchTrainer (`train.launch.run_data_parallel`).
"""

from dataclasses import replace
from typing import Any

from distgan.config import SweepConfig
from distgan.errors import DistganError
from distgan.layout import SweepPaths
from distgan.runtime import distributed
from distgan.train.launch import Launch, WorkerFn

TRIAL_DRIVER_CPUS = 1.0  # Ray Tune's default reservation for a function trainable


def _launch(cfg: SweepConfig, *, to_tune: bool, in_process: bool) -> Launch:
    return Launch(
        workers=cfg.workers_per_trial,
        cpus_per_worker=cfg.cpus_per_worker,
        gpus_per_worker=cfg.gpus_per_worker,
        storage_dir=SweepPaths(cfg.results_dir, cfg.name).train_storage_dir,
        in_tune_trial=to_tune,
        in_process=in_process,
    )


def sweep_jobs(cfg: SweepConfig) -> Launch:
    """The shared artifacts' jobs, from the sweep's driver: in its own process only on a Ray instance of this machine
    without GPUs and with one worker per job (before any trial starts, so it takes no trial's CPUs). On a cluster
    (`--address`) Ray Train places them where the resources are, and with GPUs the driver would keep a CUDA context
    for the whole sweep."""
    here = jobs_in_trial(cfg) and cfg.address is None and not cfg.use_gpu
    return _launch(cfg, to_tune=False, in_process=here)


def trial_jobs(cfg: SweepConfig, *, to_tune: bool = False) -> Launch:
    """A trial's jobs, each on the trial's workers (in the trial's own process when it has one worker: it holds that
    worker's resources). `to_tune`: the job's reports reach Ray Tune (a classifier's epochs; a GAN trial reports its
    rungs itself)."""
    return _launch(cfg, to_tune=to_tune, in_process=jobs_in_trial(cfg))


def sampling_jobs(cfg: SweepConfig, generator_kind: str) -> Launch:
    """A trial's synthetic set: on the trial's GPU workers, each rank its shards; in the trial's own process on CPUs
    (a Ray Train group costs ~10 s per set and the CPUs gain nothing from it), for images read from folders, and when
    the trial has one worker (its process holds the GPU: a second request would wait for ever)."""
    if cfg.use_gpu and generator_kind != "samples" and not jobs_in_trial(cfg):
        return trial_jobs(cfg)
    return replace(trial_jobs(cfg), workers=1, in_process=True)


def under_torchrun(fn: WorkerFn, job: Any) -> Any:
    """A `distgan` stage's job on this process's rank, the process group from torchrun's environment (none: a world
    of one); returns what fn returns."""
    distributed.init_from_env()
    return fn(job)


def jobs_in_trial(cfg: SweepConfig) -> bool:
    """Whether a trial runs its data-parallel jobs itself: with one worker there is nothing to all-reduce, and a
    Ray Train worker group of one costs a controller and a worker process per job (about 10 s from Tuner.fit()
    to the first step, against 3 s: benchmarks/bench_sweep_overhead.py). The trial then holds the worker's
    resources (`trial_resources`)."""
    return cfg.workers_per_trial == 1


def trial_resources(cfg: SweepConfig) -> dict:
    """What a trial's own process reserves: the worker's CPUs and GPUs when it runs its jobs itself, else
    Tune's default of one CPU for a driver that waits on its TorchTrainer jobs' workers."""
    if jobs_in_trial(cfg):
        return {"cpu": cfg.cpus_per_worker, "gpu": cfg.gpus_per_worker}
    return {"cpu": TRIAL_DRIVER_CPUS, "gpu": 0}


def fitting_concurrency(cfg: SweepConfig, cluster: dict) -> int:
    """How many trials can run at once with all their workers placed; a DistganError when not one can.

    A trial holds its driver's CPU while its TorchTrainer asks for the workers' resources; with more
    trials than fit, every driver waits on workers that never start (a deadlock, not a queue). A trial
    that runs its one worker itself needs only that worker's resources.
    """
    own = trial_resources(cfg)
    workers = 0 if jobs_in_trial(cfg) else cfg.workers_per_trial
    per_trial_cpus = own["cpu"] + workers * cfg.cpus_per_worker
    fitting = int(cluster.get("CPU", 0) // per_trial_cpus)
    per_trial_gpus = own["gpu"] + workers * cfg.gpus_per_worker
    if cfg.use_gpu:
        fitting = min(fitting, int(cluster.get("GPU", 0) // per_trial_gpus))
    if fitting < 1:
        raise DistganError(
            f"a trial needs {per_trial_cpus:g} CPUs ({cfg.workers_per_trial} workers × {cfg.cpus_per_worker:g}"
            f"{'' if jobs_in_trial(cfg) else ' + its driver'}){f' and {per_trial_gpus:g} GPUs' if cfg.use_gpu else ''}"
            f"; the Ray cluster has {cluster}"
        )
    return fitting
