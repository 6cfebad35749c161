"""Run a sweep: shared artifacts once, then one Ray Tune trial per point of the space, then the report."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune

from distgan.analysis.report import build_report
from distgan.config import SweepConfig, to_dict
from distgan.data.shards import write_json_atomic
from distgan.errors import DistganError
from distgan.experiments.artifacts import prepare_real_shards, prepare_sweep
from distgan.experiments.trial import run_trial, sweep_launch, trial_name

log = logging.getLogger("distgan")


class TrialsFailed(DistganError):
    """Some trials of a sweep raised; the report holds the others."""


@dataclass(frozen=True)
class SweepOutcome:
    report_path: Path
    wall_time_sec: float


TRIAL_DRIVER_CPUS = 1.0  # Ray Tune's default reservation for a function trainable


def fitting_concurrency(cfg: SweepConfig, cluster: dict) -> int:
    """How many trials can run at once with all their workers placed.

    A trial holds its driver's CPU while its TorchTrainer asks for the workers' resources; with more
    trials than fit, every driver waits on workers that never start (a deadlock, not a queue).
    """
    per_trial_cpus = TRIAL_DRIVER_CPUS + cfg.workers * cfg.cpus_per_worker
    fitting = int(cluster.get("CPU", 0) // per_trial_cpus)
    if cfg.use_gpu:
        fitting = min(fitting, int(cluster.get("GPU", 0) // cfg.workers))
    if fitting < 1:
        raise DistganError(
            f"a trial needs {per_trial_cpus:g} CPUs ({cfg.workers} workers × {cfg.cpus_per_worker:g} + its driver)"
            f"{f' and {cfg.workers} GPUs' if cfg.use_gpu else ''}; the Ray cluster has {cluster}"
        )
    return fitting


def run_sweep(cfg: SweepConfig, param_space: dict) -> SweepOutcome:
    """Make the shared artifacts, run every trial of `param_space` under Ray Tune, write the report."""
    started = time.time()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cfg.out_dir / "config.json", to_dict(cfg))
    prepare_real_shards(cfg)  # reads the dataset first: a bad path fails before Ray starts
    if not ray.is_initialized():
        ray.init(address=cfg.address, log_to_driver=True)
    artifacts = prepare_sweep(cfg, sweep_launch(cfg, in_tune_trial=False))
    tuner = tune.Tuner(
        tune.with_parameters(run_trial, cfg=cfg, artifacts=artifacts),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=cfg.max_concurrent_trials or fitting_concurrency(cfg, ray.cluster_resources()),
            trial_name_creator=lambda trial: trial_name(trial.config),
            trial_dirname_creator=lambda trial: trial_name(trial.config),
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(cfg.out_dir / "ray")),
    )
    grid = tuner.fit()
    report_path = build_report(cfg.out_dir)
    failed = [result for result in grid if result.error is not None]
    if failed:
        names = ", ".join(f"{Path(r.path).name}: {type(r.error).__name__}: {r.error}" for r in failed)
        raise TrialsFailed(f"{len(failed)} trial(s) failed ({names}); report of the rest: {report_path}")
    return SweepOutcome(report_path=report_path, wall_time_sec=time.time() - started)
