"""A trial's result record (`result.json`, in the keys of `schema.py`): its scores and what made them — configs,
digests, versions, where each stage ran — and its scalars as Ray Tune sees them."""

import os
import platform
import time
from pathlib import Path

import numpy as np
import ray
import torch

import distgan
from distgan.config import SweepConfig, to_dict
from distgan.data.manifest import manifest_digest, read_manifest
from distgan.experiments.artifacts import SweepArtifacts
from distgan.experiments.classifier import TrainingSet
from distgan.experiments.synthetic import SweepGenerator
from distgan.jobs.scoring import REAL_ROW_SPLITS
from distgan.jobs.stages import read_stages
from distgan.schema import GAN_FIELDS, SCORES, flat_quality, gan_train_accuracy
from distgan.train.gan import resolved_gan


def result_record(
    cfg: SweepConfig,
    artifacts: SweepArtifacts,
    training: TrainingSet,
    *,
    generator: SweepGenerator | None,
    train_dir: Path,
    scores: dict,
    quality: dict,
    stages: dict,
    trial_dir: Path,
    started: float,
) -> dict:
    """result.json of a trial: scores, quality, what made them (configs, digests, versions, node, stages: those given,
    the set's sampling and scoring, and the trial's own training and evaluation)."""
    return {
        "sweep": cfg.name,
        "space": cfg.space,
        "experiment": training.experiment,
        "trial": trial_dir.name,
        "training_set": training.kind,
        "generator_name": training.generator,
        "knob": None if generator is None else generator.knob,
        "knob_value": training.knob_value,
        "synthetic_fraction": training.fraction,
        "sample": None if generator is None else to_dict(cfg.sample),
        "generator": None if generator is None else to_dict(generator.config) | {"sha256": generator.sha256},
        "gan": gan_fields(generator),
        **scores,
        **quality,
        "gan_train_accuracy": gan_train_accuracy(training.kind, scores.get("top1_error")),
        "class_names": read_manifest(artifacts.real_test_dir)["class_names"],
        "feature_spaces": artifacts.spaces_described,
        "real_row_splits": REAL_ROW_SPLITS if training.real else None,
        "digests": {
            "train_manifest_sha256": manifest_digest(train_dir),
            "test_manifest_sha256": manifest_digest(artifacts.real_test_dir),
            "generator_sha256": None if generator is None else generator.sha256,
            "extractor_sha256": artifacts.extractor_sha256,
        },
        "workers": cfg.workers_per_trial,
        "node": {"hostname": platform.node(), "ray_node_id": _ray_node_id()},
        "driver": {"host": platform.node(), "pid": os.getpid()},
        "stages": stages | read_stages(trial_dir, ("train", "evaluate")),
        "versions": {"distgan": distgan.__version__, "torch": torch.__version__, "ray": ray.__version__},
        "config": to_dict(cfg),
        "wall_time_sec": time.time() - started,
    }


def gan_fields(generator: SweepGenerator | None) -> dict | None:
    """The report's GAN columns of a GAN the sweep trained (None for a user's generator and the real row)."""
    if generator is None or generator.gan is None:
        return None
    gan = resolved_gan(generator.gan)  # the loss's defaults filled in, as training used them
    return {field: getattr(gan, field) for field in GAN_FIELDS}


def _ray_node_id() -> str | None:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def finite_scalars(result: dict) -> dict:
    """The scalar metrics of a result, for Ray Tune's reporter, each sample metric under its feature space's label
    (absent and non-finite ones left out)."""
    values = {key: result.get(key) for key in SCORES} | flat_quality(result.get("quality"))
    return {key: float(value) for key, value in values.items() if value is not None and np.isfinite(value)}
