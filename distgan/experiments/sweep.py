"""Run a sweep whose pre-flight passed (`distgan.sweep.run`): shared artifacts once, then one Ray Tune trial per point
of the space, then the report."""

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune
from ray.tune.logger import TBXLoggerCallback

from distgan.analysis.report import build_report
from distgan.config import SweepConfig, to_dict
from distgan.errors import DistganError
from distgan.experiments.artifacts import RealShards, prepare_sweep
from distgan.experiments.compared import ComparedGenerator
from distgan.experiments.spaces import SweepSpace
from distgan.experiments.synthetic import SweepGenerator
from distgan.experiments.trial import USER_ERROR_KEY, run_trial, trial_name
from distgan.jobs.placement import fitting_concurrency, trial_resources
from distgan.layout import SweepPaths
from distgan.runtime.atomic import write_json_atomic, write_text_atomic

log = logging.getLogger("distgan")


class TrialsFailed(DistganError):
    """Some trials of a sweep failed; the report holds the others."""


@dataclass(frozen=True)
class SweepOutcome:
    report_path: Path
    wall_time_sec: float


def require_resumable(cfg: SweepConfig) -> None:
    """DistganError unless cfg's sweep left Ray Tune state to resume."""
    tune_dir = SweepPaths(cfg.results_dir, cfg.name).tune_dir
    if not tune.Tuner.can_restore(str(tune_dir)):
        raise DistganError(f"--resume: no sweep state to resume in {tune_dir}")


def start_ray(cfg: SweepConfig) -> int:
    """Ray on this machine or the cluster at cfg.address (unless one is running in this process); the number of
    trials that fit it at once, refused (DistganError) before any work when not one does."""
    if not ray.is_initialized():
        ray.init(address=cfg.address, log_to_driver=True)
    return cfg.max_concurrent_trials or fitting_concurrency(cfg, ray.cluster_resources())


def run_sweep(
    cfg: SweepConfig,
    space: SweepSpace,
    real: RealShards,
    *,
    generator: SweepGenerator | None,
    compared: dict[str, ComparedGenerator] | None = None,
    resume: bool = False,
) -> SweepOutcome:
    """Make the shared artifacts, run every trial of `space` under Ray Tune, write the report.

    generator: the user's (`synthetic.resolve_generator`); None: the sweep trains cfg.gan (or, in the gan and
    gan-test spaces, each trial its own).
    compared: the compare space's generators by name (`compared.resolve_generators`); its trials sample those.
    resume: go on with the sweep in its directory after its driver died: finished trials are kept, the others run
    (from their checkpoints). Without it, an existing sweep of that name is started afresh.
    """
    started = time.time()
    paths = SweepPaths(cfg.results_dir, cfg.name)
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.config_file, to_dict(cfg))
    if not resume and paths.trials_dir.is_dir():
        log.info("starting %s afresh: its previous trials are removed (--resume goes on with them)", paths.out_dir)
        for previous in (paths.trials_dir, paths.tune_dir):
            shutil.rmtree(previous, ignore_errors=True)
    token = uuid.uuid4().hex  # each trial checks its node sees it: the results directory is shared
    write_text_atomic(paths.token_file, token)
    concurrency = start_ray(cfg)
    with_generator = space.experiment not in ("gan", "compare")  # those trials' generators are their own
    artifacts = prepare_sweep(cfg, real, generator=generator, with_generator=with_generator, compared=compared)
    knob = artifacts.generator.knob if artifacts.generator is not None else "truncation"
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, cfg=cfg, experiment=space.experiment, artifacts=artifacts, token=token),
        trial_resources(cfg),
    )
    if resume:
        log.info("resuming the sweep in %s", paths.tune_dir)
        tuner = tune.Tuner.restore(str(paths.tune_dir), trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=space.param_space,
            tune_config=tune.TuneConfig(
                num_samples=space.num_samples,
                scheduler=space.scheduler,
                # The concurrency limit goes to the search algorithm: given one, Tune ignores max_concurrent_trials.
                search_alg=tune.search.BasicVariantGenerator(
                    max_concurrent=concurrency, random_state=space.search_seed
                ),  # fmt: skip
                # A trial's process outlives it and runs the next: imports, kernels and caches are warm
                # (a fresh one costs seconds per trial: benchmarks/bench_sweep_overhead.py).
                reuse_actors=True,
                trial_name_creator=lambda trial: trial_name(space.experiment, trial.config, trial.trial_id, knob),
                trial_dirname_creator=lambda trial: trial_name(space.experiment, trial.config, trial.trial_id, knob),
            ),
            run_config=tune.RunConfig(
                name=paths.tune_dir.name,
                storage_path=str(paths.tune_dir.parent),
                failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
                callbacks=[TBXLoggerCallback()],  # TensorBoard events per trial, beside Tune's result.json
            ),
        )
    grid = tuner.fit()
    report_path = build_report(paths.out_dir)
    failed = [f"{Path(r.path).name}: {type(r.error).__name__}: {r.error}" for r in grid if r.error is not None]
    failed += [f"{Path(r.path).name}: {r.metrics[USER_ERROR_KEY]}" for r in grid if USER_ERROR_KEY in (r.metrics or {})]
    if failed:
        raise TrialsFailed(f"{len(failed)} trial(s) failed ({'; '.join(failed)}); report of the rest: {report_path}")
    return SweepOutcome(report_path=report_path, wall_time_sec=time.time() - started)
