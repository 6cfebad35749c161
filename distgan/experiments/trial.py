"""The Ray Tune trainable: one point of a sweep's space becomes one experiment trial."""

from pathlib import Path

from ray import tune

from distgan.config import SweepConfig
from distgan.experiments.artifacts import SweepArtifacts
from distgan.experiments.replacement import finite_scalars, run_replacement_trial
from distgan.train.launch import Launch


def trial_name(params: dict) -> str:
    """Stable, readable trial names: 'real', 'tau0.5', ... (also the trial's directory name)."""
    point = params["trial"]
    return "real" if point["truncation"] is None else f"tau{point['truncation']:g}"


def trial_dir(cfg: SweepConfig, name: str) -> Path:
    return cfg.out_dir / "trials" / name


def sweep_launch(cfg: SweepConfig, *, in_tune_trial: bool) -> Launch:
    """How the sweep's data-parallel jobs run: its workers, resources and Ray Train storage."""
    return Launch(
        workers=cfg.workers,
        cpus_per_worker=cfg.cpus_per_worker,
        use_gpu=cfg.use_gpu,
        storage_dir=cfg.out_dir / "ray" / "train",
        in_tune_trial=in_tune_trial,
    )


def run_trial(params: dict, *, cfg: SweepConfig, artifacts: SweepArtifacts) -> None:
    """Ray Tune function trainable: run the experiment of cfg.space at this point and report its scores."""
    name = trial_name(params)
    launch = sweep_launch(cfg, in_tune_trial=True)
    result = run_replacement_trial(
        cfg, artifacts, truncation=params["trial"]["truncation"], trial_dir=trial_dir(cfg, name), launch=launch
    )
    tune.report(finite_scalars(result) | {"done": True})
