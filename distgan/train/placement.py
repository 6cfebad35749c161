"""Where a sweep's data-parallel jobs run and what each trial reserves: said here, once, from the config.

A job of one worker runs in the process that wants it (a trial's own, or the driver's for the shared artifacts of
a sweep on this machine's CPUs); a wider one is a Ray Train TorchTrainer (`launch.run_data_parallel`).
"""

from distgan.config import SweepConfig
from distgan.errors import DistganError
from distgan.train.launch import Launch

TRIAL_DRIVER_CPUS = 1.0  # Ray Tune's default reservation for a function trainable


def sweep_launch(cfg: SweepConfig, *, in_tune_trial: bool) -> Launch:
    """How the sweep's data-parallel jobs run: its workers, resources and Ray Train storage. Jobs of one worker
    run in the process that wants them: a trial's own (`jobs_in_trial`), or the driver's for the shared
    artifacts of a sweep on this machine's CPUs (`jobs_in_driver`)."""
    return Launch(
        workers=cfg.workers_per_trial,
        cpus_per_worker=cfg.cpus_per_worker,
        gpus_per_worker=cfg.gpus_per_worker,
        storage_dir=cfg.out_dir / "ray" / "train",
        in_tune_trial=in_tune_trial,
        in_process=jobs_in_trial(cfg) if in_tune_trial else jobs_in_driver(cfg),
    )


def jobs_in_trial(cfg: SweepConfig) -> bool:
    """Whether a trial runs its data-parallel jobs itself: with one worker there is nothing to all-reduce, and a
    Ray Train worker group of one costs a controller and a worker process per job (about 10 s from Tuner.fit()
    to the first step, against 3 s: benchmarks/bench_sweep_overhead.py). The trial then holds the worker's
    resources (`trial_resources`)."""
    return cfg.workers_per_trial == 1


def jobs_in_driver(cfg: SweepConfig) -> bool:
    """Whether the driver runs the shared artifacts' one-worker jobs itself (before any trial starts, so it takes
    no trial's CPUs): only on a Ray instance of this machine without GPUs. On a cluster (`--address`) Ray Train
    places them where the resources are, and with GPUs the driver would keep a CUDA context for the whole sweep."""
    return jobs_in_trial(cfg) and cfg.address is None and not cfg.use_gpu


def trial_resources(cfg: SweepConfig) -> dict:
    """What a trial's own process reserves: the worker's CPUs and GPUs when it runs its jobs itself, else
    Tune's default of one CPU for a driver that waits on its TorchTrainer jobs' workers."""
    if jobs_in_trial(cfg):
        return {"cpu": cfg.cpus_per_worker, "gpu": cfg.gpus_per_worker}
    return {"cpu": TRIAL_DRIVER_CPUS, "gpu": 0}


def fitting_concurrency(cfg: SweepConfig, cluster: dict) -> int:
    """How many trials can run at once with all their workers placed.

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
