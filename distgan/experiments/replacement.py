"""The replacement experiment (CAS / GAN-train) of Ravuri & Vinyals: train a classifier only on generated
images — one per real training image, same class — and test it on the real test split. The real row
trains the same classifier on the real training images.
"""

import json
import platform
import time
from pathlib import Path

import numpy as np
import ray
import torch

import distgan
from distgan.analysis.figures import sample_grid
from distgan.config import SweepConfig, to_dict
from distgan.data.download import sha256_of
from distgan.data.shards import manifest_digest, read_manifest, read_shards, write_json_atomic
from distgan.experiments.artifacts import SweepArtifacts, prepare_synthetic_shards
from distgan.experiments.workers import classifier_worker, read_scores
from distgan.metrics.quality import load_reference_stats, sample_quality
from distgan.train.classifier import evaluate_classifier, load_classifier
from distgan.train.launch import Launch, run_data_parallel

RESULT_NAME = "result.json"
SAMPLES_NAME = "samples.png"  # one row per class
EXTRACTOR_NOTE = "domain classifier ({arch}) trained on the real training split; offline stand-in for InceptionV3"


def run_replacement_trial(
    cfg: SweepConfig, artifacts: SweepArtifacts, *, truncation: float | None, trial_dir: Path, launch: Launch
) -> dict:
    """One row of Table 1: truncation None is the real-data row. Writes and returns result.json."""
    started = time.time()
    trial_dir.mkdir(parents=True, exist_ok=True)
    # Training set and its sample quality.
    if truncation is None:
        train_dir = artifacts.real_train_dir
        quality = json.loads(artifacts.real_quality_path.read_text())
    else:
        train_dir = prepare_synthetic_shards(cfg, artifacts, truncation)
        synthetic = read_shards(train_dir)
        sample_grid(synthetic.images_NHWC, synthetic.labels_N, trial_dir / SAMPLES_NAME)
        extractor = load_classifier(artifacts.extractor_path)
        reference = load_reference_stats(artifacts.real_stats_path)
        quality = sample_quality(extractor, synthetic.images_NHWC, reference, is_splits=cfg.metrics.is_splits)
        # GAN-test (Shmelkov et al.): the classifier trained on real data, tested on the generated set.
        quality["gan_test_accuracy"] = 1 - evaluate_classifier(extractor, synthetic)["top1_error"]
    # Classifier: a data-parallel job over launch.workers workers, tested on the real test split.
    job = {
        "classifier": cfg.classifier,
        "train_dir": str(train_dir),
        "test_dir": str(artifacts.real_test_dir),
        "out_dir": str(trial_dir),
        "save_model": False,
        "engine": cfg.engine,
        "on_bad_sample": cfg.data.on_bad_sample,
    }
    run_data_parallel(classifier_worker, job, launch=launch, name=f"classifier-{trial_dir.name}")
    scores = read_scores(trial_dir)
    result = {
        "sweep": cfg.name,
        "space": cfg.space,
        "trial": trial_dir.name,
        "training_set": "real" if truncation is None else "synthetic",
        "truncation": truncation,
        "truncation_factor": None if truncation is None else cfg.sample.truncation_factor,
        "sample_seed": None if truncation is None else cfg.sample.seed,
        **scores,
        **quality,
        "class_names": read_manifest(artifacts.real_test_dir)["class_names"],
        "feature_extractor": EXTRACTOR_NOTE.format(arch=cfg.classifier.arch),
        "real_fid_note": "real row: FID of the real test split against the real training split"
        if truncation is None
        else None,
        "digests": {
            "train_manifest_sha256": manifest_digest(train_dir),
            "test_manifest_sha256": manifest_digest(artifacts.real_test_dir),
            "generator_sha256": artifacts.generator_sha256,
            "extractor_sha256": sha256_of(artifacts.extractor_path),
        },
        "workers": launch.workers,
        "node": {"hostname": platform.node(), "ray_node_id": _ray_node_id()},
        "versions": {"distgan": distgan.__version__, "torch": torch.__version__, "ray": ray.__version__},
        "config": to_dict(cfg),
        "wall_time_sec": time.time() - started,
    }
    write_json_atomic(trial_dir / RESULT_NAME, result)
    return result


def _ray_node_id() -> str | None:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def finite_scalars(result: dict) -> dict:
    """The scalar metrics of a result, for Ray Tune's reporter."""
    keys = ("top1_error", "top5_error", "inception_score_mean", "inception_score_std", "fid")
    return {key: float(result[key]) for key in keys if np.isfinite(result[key])}
