"""Run a sweep: shared artifacts once, then one Ray Tune trial per point of the space, then the report."""

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune
from ray.tune.logger import TBXLoggerCallback
from ray.tune.schedulers import TrialScheduler

from distgan.analysis.report import build_report
from distgan.config import SweepConfig, to_dict
from distgan.errors import ConfigError, DistganError
from distgan.experiments.artifacts import prepare_real_shards, prepare_sweep
from distgan.experiments.generated import SweepGenerator
from distgan.experiments.trial import run_trial, trial_name
from distgan.runtime.atomic import write_json_atomic
from distgan.schema import EXPERIMENTS
from distgan.train.placement import fitting_concurrency, sweep_launch, trial_resources

log = logging.getLogger("distgan")


class TrialsFailed(DistganError):
    """Some trials of a sweep raised; the report holds the others."""


@dataclass(frozen=True)
class SweepSpace:
    """What tune/spaces.py declares: the experiment, its Tune param space, and how to search it."""

    experiment: str  # one of schema.EXPERIMENTS
    param_space: dict  # {"point": ..., "gan": ...}, with tune.grid_search / distributions inside
    num_samples: int = 1  # draws of the space's distributions (grids are crossed with each)
    scheduler: TrialScheduler | None = None  # e.g. ASHA for the gan space
    search_seed: int | None = None  # makes the random draws reproducible

    def __post_init__(self) -> None:
        if self.experiment not in EXPERIMENTS:
            raise DistganError(f"space experiment {self.experiment!r} is not one of {EXPERIMENTS}")


@dataclass(frozen=True)
class SweepOutcome:
    report_path: Path
    wall_time_sec: float


def tune_dir(cfg: SweepConfig) -> Path:
    """Ray Tune's experiment directory of a sweep (its state: what --resume restores)."""
    return cfg.out_dir / "ray" / "tune"


def require_resumable(cfg: SweepConfig) -> None:
    """DistganError unless cfg's sweep left Ray Tune state to resume."""
    if not tune.Tuner.can_restore(str(tune_dir(cfg))):
        raise DistganError(f"--resume: no sweep state to resume in {tune_dir(cfg)}")


def run_sweep(
    cfg: SweepConfig, space: SweepSpace, *, generator: SweepGenerator | None = None, resume: bool = False
) -> SweepOutcome:
    """Make the shared artifacts, run every trial of `space` under Ray Tune, write the report.

    generator: the user's (`generated.resolve_generator`); None: the sweep trains cfg.gan (or, in the gan and
    gan-test spaces, each trial its own).
    resume: go on with the sweep in cfg.out_dir after its driver died: finished trials are kept, the
    others run (from their checkpoints). Without it, an existing sweep of that name is started afresh.
    """
    started = time.time()
    if resume:
        require_resumable(cfg)
    prepare_real_shards(cfg)  # reads the dataset first: a bad path fails before Ray starts
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cfg.out_dir / "config.json", to_dict(cfg))
    if not resume and (cfg.out_dir / "trials").is_dir():
        log.info("starting %s afresh: its previous trials are removed (--resume goes on with them)", cfg.out_dir)
        for previous in (cfg.out_dir / "trials", tune_dir(cfg)):
            shutil.rmtree(previous, ignore_errors=True)
    if not ray.is_initialized():
        ray.init(address=cfg.address, log_to_driver=True)
    if space.experiment in ("gan", "gan-test") and not cfg.generator.trained_by_the_sweep:
        raise ConfigError(f"--space {cfg.space} trains its own GANs: it takes no --generator.kind/--generator.weights")
    launch = sweep_launch(cfg, in_tune_trial=False)
    artifacts = prepare_sweep(cfg, launch, generator=generator, with_generator=space.experiment != "gan")
    knob = artifacts.generator.knob if artifacts.generator is not None else "truncation"
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, cfg=cfg, experiment=space.experiment, artifacts=artifacts),
        trial_resources(cfg),
    )
    if resume:
        log.info("resuming the sweep in %s", tune_dir(cfg))
        tuner = tune.Tuner.restore(str(tune_dir(cfg)), trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=space.param_space,
            tune_config=tune.TuneConfig(
                num_samples=space.num_samples,
                scheduler=space.scheduler,
                # The concurrency limit goes to the search algorithm: given one, Tune ignores max_concurrent_trials.
                search_alg=tune.search.BasicVariantGenerator(
                    max_concurrent=cfg.max_concurrent_trials or fitting_concurrency(cfg, ray.cluster_resources()),
                    random_state=space.search_seed,
                ),
                # A trial's process outlives it and runs the next: imports, kernels and caches are warm
                # (a fresh one costs seconds per trial: benchmarks/bench_sweep_overhead.py).
                reuse_actors=True,
                trial_name_creator=lambda trial: trial_name(space.experiment, trial.config, trial.trial_id, knob),
                trial_dirname_creator=lambda trial: trial_name(space.experiment, trial.config, trial.trial_id, knob),
            ),
            run_config=tune.RunConfig(
                name=tune_dir(cfg).name,
                storage_path=str(tune_dir(cfg).parent),
                failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
                callbacks=[TBXLoggerCallback()],  # TensorBoard events per trial, beside Tune's result.json
            ),
        )
    grid = tuner.fit()
    report_path = build_report(cfg.out_dir)
    failed = [result for result in grid if result.error is not None]
    if failed:
        names = ", ".join(f"{Path(r.path).name}: {type(r.error).__name__}: {r.error}" for r in failed)
        raise TrialsFailed(f"{len(failed)} trial(s) failed ({names}); report of the rest: {report_path}")
    return SweepOutcome(report_path=report_path, wall_time_sec=time.time() - started)
