"""The Ray Tune trainable: one point of a sweep's space becomes one experiment trial.

A trial's config is {"point": {"real": bool, "knob_value": v | None, "fraction": f | None}, "gan": {GAN overrides}};
the sweep's experiment (replacement, augmentation, gan, gan-test) says what the trial does with it. A classification
trial (Ravuri & Vinyals 2019; Shmelkov et al. 2018) trains a classifier on real images, on generated ones only
(replacement: CAS / GAN-train) or on real plus a fraction of generated ones (augmentation), tests it on the real test
split, and scores the generated set (IS, FID, ..., GAN-test).
"""

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

from ray import tune

from distgan.config import SweepConfig, digest
from distgan.errors import DistganError
from distgan.experiments.artifacts import SweepArtifacts, prepare_generator, prepare_mixture
from distgan.experiments.classifier import TrainingSet, classifier_scores
from distgan.experiments.gan_trial import run_gan_trial
from distgan.experiments.record import finite_scalars, result_record
from distgan.experiments.scoring import copy_loss_curves, real_quality, scored_once, scoring_job, synthetic_quality
from distgan.experiments.synthetic import SweepGenerator, point_name, prepare_synthetic_shards
from distgan.flags import with_overrides
from distgan.jobs.placement import trial_jobs
from distgan.layout import FAILURE_FILE, RESULT_FILE, TRIAL_KEY_FILE, SweepPaths
from distgan.models.checks import check_gan
from distgan.runtime.atomic import write_json_atomic, write_text_atomic
from distgan.runtime.paths import require_visible

log = logging.getLogger("distgan")
USER_ERROR_KEY = "user_error"  # a trial that ended on a user's error reports it under this key: never retried


def trial_name(experiment: str, params: dict, trial_id: str, knob: str | None) -> str:
    """Stable, readable trial names, also the trial's directory: 'real', 'tau0.5', 'guidance4-frac0.25',
    'seed1' (gan-test; 'dcgan-seed1', 'lr_g0.001-seed1' when a YAML space grids other GAN fields too),
    'gan-<trial id>' (gan space, whose points are random draws), 'copier-generated-seed1' (compare: the generator's
    name, then its set, then the classifier's seed after the first)."""
    point, gan = params["point"], params.get("gan") or {}
    if experiment == "gan":
        return f"gan-{trial_id}"
    if experiment == "compare":
        name = "real" if point["real"] else f"{point['generator']}-{point_name(point['knob'], point['knob_value'])}"
        return name + (f"-seed{params['seed']}" if params["seed"] else "")
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


def _claim(directory: Path, key: str) -> None:
    """Make `directory` this trial's: outputs (and checkpoints) of another config under its name are removed,
    those of the same config kept, so that a retried or resumed trial goes on from its checkpoints."""
    marker = directory / TRIAL_KEY_FILE
    if marker.is_file() and marker.read_text() != key:
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, key)


def _finished_result(directory: Path) -> dict | None:
    """The result of a trial that ran to its end in `directory` (claimed: same config), else None."""
    path = directory / RESULT_FILE
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return None if result.get("stopped_early") else result  # a gan trial's rung result: go on training


def run_classification_trial(
    cfg: SweepConfig,
    artifacts: SweepArtifacts,
    training: TrainingSet,
    *,
    generator: SweepGenerator | None,
    trial_dir: Path,
) -> dict:
    """One row of Table 1 (replacement), of the augmentation table, or of the GAN-test table. Writes
    and returns result.json."""
    started = time.time()
    trial_dir.mkdir(parents=True, exist_ok=True)
    if training.real:
        train_dir, used_generator = artifacts.real_train_dir, None
        scores = classifier_scores(cfg, train_dir, artifacts, trial_dir, to_tune=True)
        quality, stages = real_quality(artifacts), {}
    else:
        used_generator = generator
        synthetic_dir = prepare_synthetic_shards(
            cfg, artifacts.real_train_dir, generator, training.knob_value, root=artifacts.paths.cache_dir
        )
        train_dir = synthetic_dir
        if training.fraction:
            train_dir = prepare_mixture(cfg, artifacts.real_train_dir, synthetic_dir, training.fraction)
        gan_test = training.experiment == "gan-test"  # the study's views of each GAN: its t-SNE and loss curves
        with scored_once(cfg, scoring_job(cfg, artifacts, synthetic_dir, trial_dir, tsne=gan_test)) as scoring:
            scores = classifier_scores(cfg, train_dir, artifacts, trial_dir, to_tune=True, scoring=scoring)
        quality, stages = synthetic_quality(synthetic_dir, trial_dir)
        if gan_test:
            copy_loss_curves(generator, trial_dir)
    result = result_record(
        cfg,
        artifacts,
        training,
        generator=used_generator,
        train_dir=train_dir,
        scores=scores,
        quality=quality,
        stages=stages,
        trial_dir=trial_dir,
        started=started,
    )
    write_json_atomic(trial_dir / RESULT_FILE, result)
    return result


def run_trial(params: dict, *, cfg: SweepConfig, experiment: str, artifacts: SweepArtifacts, token: str) -> None:
    """Ray Tune function trainable: run `experiment` at this point and report its scores. A user's error (a generator
    that breaks its contract midway, a corrupt shard) ends the trial with one line, also in its failure.json (the
    report's), and is not retried: it would fail the same way again."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    paths = SweepPaths(cfg.results_dir, cfg.name)
    directory = paths.trial_dir(tune.get_context().get_trial_name())  # named by trial_name on the driver
    try:
        require_visible(paths.token_file, token)  # this node sees the driver's results directory
        _claim(directory, digest(cfg, experiment, params))
        (directory / FAILURE_FILE).unlink(missing_ok=True)  # a rerun's own outcome replaces an earlier one's
        _run(params, cfg=cfg, experiment=experiment, artifacts=artifacts, directory=directory)
    except DistganError as err:
        log.error("trial %s: %s", directory.name, err)
        line = f"{type(err).__name__}: {err}"
        if directory.is_dir():  # claimed: this node sees the results directory
            write_json_atomic(directory / FAILURE_FILE, {"trial": directory.name, "error": line} | params)
        tune.report({USER_ERROR_KEY: line, "done": True})


def _run(params: dict, *, cfg: SweepConfig, experiment: str, artifacts: SweepArtifacts, directory: Path) -> None:
    gan = with_overrides(cfg.gan, params.get("gan") or {})
    check_gan(gan, image_size=cfg.data.image_size if params.get("gan") else None)
    finished = _finished_result(directory)
    if finished is not None:  # e.g. the driver died after the trial wrote its result, before Tune saved its state
        log.info("trial %s finished before; its result.json stands", directory.name)
        tune.report(finite_scalars(finished) | ({"gan_iterations": gan.iterations} if experiment == "gan" else {}))
        return
    if experiment == "gan":
        run_gan_trial(cfg, artifacts, gan, trial_dir=directory)  # reports its rungs itself
        return
    point = params["point"]
    generator = artifacts.generator
    if experiment == "compare":  # its generator by name; a GAN of distgan's, trained once by the first trial wanting it
        cfg = replace(cfg, classifier=replace(cfg.classifier, seed=cfg.classifier.seed + params["seed"]))
        named = None if point["real"] else artifacts.compared[point["generator"]]
        if named is not None:
            generator = named.generator or prepare_generator(cfg, artifacts.real_train_dir, named.gan,
                                                             launch=trial_jobs(cfg))  # fmt: skip
    elif gan != cfg.gan and not point["real"]:
        generator = prepare_generator(cfg, artifacts.real_train_dir, gan, launch=trial_jobs(cfg))
    training = TrainingSet(experiment=experiment, real=point["real"], knob_value=point["knob_value"],
                           fraction=point.get("fraction"), generator=point.get("generator"))  # fmt: skip
    result = run_classification_trial(cfg, artifacts, training, generator=generator, trial_dir=directory)
    tune.report(finite_scalars(result) | {"done": True})
