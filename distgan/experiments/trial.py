"""The Ray Tune trainable: one point of a sweep's space becomes one experiment trial.

A trial's config is {"point": {"real": bool, "knob_value": v | None, "fraction": f | None}, "gan": {GAN overrides}};
the sweep's experiment (replacement, augmentation, gan, gan-test) says what the trial does with it.
"""

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from ray import tune

from distgan.config import SweepConfig, digest
from distgan.experiments.artifacts import SweepArtifacts, prepare_generator
from distgan.experiments.classification import TrainingSet, finite_scalars, run_classification_trial
from distgan.experiments.gan_search import run_gan_search_trial
from distgan.experiments.generated import point_name
from distgan.flags import with_overrides
from distgan.runtime.atomic import write_text_atomic
from distgan.schema import RESULT_NAME
from distgan.train.placement import sweep_launch

KEY_NAME = ".trial-key"  # digest of what determines a trial's outputs; a stale directory is cleared


def trial_name(experiment: str, params: dict, trial_id: str, knob: str | None) -> str:
    """Stable, readable trial names, also the trial's directory: 'real', 'tau0.5', 'guidance4-frac0.25',
    'seed1' (gan-test; 'dcgan-seed1', 'lr_g0.001-seed1' when a YAML space grids other GAN fields too),
    'gan-<trial id>' (gan space, whose points are random draws)."""
    point, gan = params["point"], params.get("gan") or {}
    if experiment == "gan":
        return f"gan-{trial_id}"
    if experiment == "gan-test":
        parts = [_part(key, value) for key, value in gan.items() if key != "seed"]
        return "-".join([*parts, *([f"seed{gan['seed']}"] if "seed" in gan else [])]) or "generator"
    if point["real"]:
        return "real"
    return point_name(knob, point["knob_value"]) + (f"-frac{point['fraction']:g}" if point.get("fraction") else "")


def _part(key: str, value: object) -> str:
    """A GAN field's value in a trial name: a name as is ('dcgan'), a number after its field ('lr_g0.001')."""
    if isinstance(value, str):
        return value
    return f"{key}{value:g}" if isinstance(value, int | float) else f"{key}{value}"


def trial_dir(cfg: SweepConfig, name: str) -> Path:
    return cfg.out_dir / "trials" / name


def _claim(directory: Path, key: str) -> None:
    """Make `directory` this trial's: outputs (and checkpoints) of another config under its name are removed,
    those of the same config kept, so that a retried or resumed trial goes on from its checkpoints."""
    marker = directory / KEY_NAME
    if marker.is_file() and marker.read_text() != key:
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, key)


def _finished_result(directory: Path) -> dict | None:
    """The result of a trial that ran to its end in `directory` (claimed: same config), else None."""
    path = directory / RESULT_NAME
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return None if result.get("stopped_early") else result  # a gan trial's rung result: go on training


def run_trial(params: dict, *, cfg: SweepConfig, experiment: str, artifacts: SweepArtifacts) -> None:
    """Ray Tune function trainable: run `experiment` at this point and report its scores."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    directory = trial_dir(cfg, tune.get_context().get_trial_name())  # named by trial_name on the driver
    _claim(directory, digest(cfg, experiment, params))
    launch = sweep_launch(cfg, in_tune_trial=True)
    gan = with_overrides(cfg.gan, params.get("gan") or {})
    finished = _finished_result(directory)
    if finished is not None:  # e.g. the driver died after the trial wrote its result, before Tune saved its state
        logging.getLogger("distgan").info("trial %s finished before; its result.json stands", directory.name)
        tune.report(finite_scalars(finished) | ({"gan_iterations": gan.iterations} if experiment == "gan" else {}))
        return
    if experiment == "gan":
        # Only the rung reports reach Tune: ASHA checks that each report carries its metric.
        run_gan_search_trial(cfg, artifacts, gan, trial_dir=directory, launch=replace(launch, in_tune_trial=False))
        return
    point = params["point"]
    generator = artifacts.generator
    if gan != cfg.gan and not point["real"]:
        generator = prepare_generator(cfg, artifacts.real_train_dir, replace(launch, in_tune_trial=False), gan)
    training = TrainingSet(
        experiment=experiment, real=point["real"], knob_value=point["knob_value"], fraction=point.get("fraction")
    )
    result = run_classification_trial(cfg, artifacts, training, generator=generator, trial_dir=directory, launch=launch)
    tune.report(finite_scalars(result) | {"done": True})
