"""Classification trials (Ravuri & Vinyals 2019; Shmelkov et al. 2018): a classifier trained on real
images, on generated ones only (replacement: CAS / GAN-train), or on real plus a fraction of generated
ones (augmentation), and tested on the real test split; with IS, FID and GAN-test of the generated set.

The pieces (training set, sample quality, classifier job, result record) are functions of the engine's
jobs so that every space composes them: nothing is written twice.
"""

import logging
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import torch

import distgan
from distgan.analysis.embedding import EMBEDDING_NAME, POINTS_PER_SIDE, tsne_embedding, write_embedding
from distgan.analysis.sample_grid import sample_grid
from distgan.config import SweepConfig, to_dict
from distgan.data.manifest import manifest_digest, read_manifest
from distgan.data.selection import ShardSelection
from distgan.experiments.artifacts import SweepArtifacts, cache_root, prepare_mixture
from distgan.experiments.feature_spaces import (
    REAL_ROW_SPLITS,
    describe_spaces,
    metric_options,
    real_row_quality,
    score_in_every_space,
    shard_image_set,
    space_extractor,
)
from distgan.experiments.generated import SweepGenerator, prepare_synthetic_shards
from distgan.experiments.workers import ClassifierJob, classifier_worker, read_scores
from distgan.metrics.engine import extract_real
from distgan.models.classifiers import load_classifier
from distgan.runtime.atomic import atomic_path, write_json_atomic
from distgan.runtime.hashing import sha256_of
from distgan.schema import (
    GAN_FIELDS,
    LOSSES_NAME,
    QUALITY_SCORES,
    RESULT_NAME,
    SAMPLES_NAME,
    SCORES,
    gan_train_accuracy,
    labelled,
)
from distgan.train.batches import open_split
from distgan.train.classifier import evaluate_classifier
from distgan.train.launch import Launch, run_data_parallel

log = logging.getLogger("distgan")
GRID_POOL = 2000  # the sample grid takes each class's first images among the set's first GRID_POOL


@dataclass(frozen=True)
class TrainingSet:
    """What a classification trial trains on: the real split, images generated at a knob value (τ, guidance; None
    for a generator without knob), or the real split plus round(fraction·N) generated images (augmentation)."""

    experiment: str  # replacement | augmentation | gan-test | gan
    real: bool
    knob_value: float | None = None
    fraction: float | None = None

    @property
    def kind(self) -> str:
        if self.real:
            return "real"
        return "real+synthetic" if self.fraction else "synthetic"


def synthetic_quality(
    cfg: SweepConfig,
    artifacts: SweepArtifacts,
    synthetic_dir: Path,
    trial_dir: Path,
    *,
    views_of: SweepGenerator | None = None,
) -> dict:
    """The generated set's numbers in every feature space (`quality`), its GAN-test accuracy (the real-data
    classifier tested on it, Shmelkov et al.), how it was sampled (`sampling`: generator identity, seeding), and a
    sample grid in the trial directory; with `views_of` (gan and gan-test trials) also that generator's loss curves
    and a t-SNE of the set against the real one (`write_gan_views`)."""
    # Nothing here holds the whole set (1.28 M images for ImageNet): the grid reads its first images, the metrics
    # their N, and GAN-test streams the set once `--classifier.loader` finds it too large for memory.
    first = ShardSelection(synthetic_dir, np.arange(min(GRID_POOL, read_manifest(synthetic_dir)["num_samples"])))
    sample_grid(first.images(0, len(first)), first.labels_N, trial_dir / SAMPLES_NAME)
    if views_of is not None:
        write_gan_views(cfg, artifacts, views_of, synthetic_dir, trial_dir)
    quality = score_in_every_space(cfg, artifacts.references, artifacts.extractor_path, synthetic_dir)
    extractor = load_classifier(artifacts.extractor_path)
    gan_test = 1 - evaluate_classifier(extractor, open_split(synthetic_dir, cfg.classifier))["top1_error"]
    sampling = read_manifest(synthetic_dir)["provenance"]["sampling"]
    return {"quality": quality, "gan_test_accuracy": gan_test, "sampling": sampling}


def copy_loss_curves(generator: SweepGenerator, trial_dir: Path) -> None:
    """The GAN job's losses.csv, from beside its generator.pt into the trial directory (atomically), if it has one."""
    losses = None if generator.config.weights is None else generator.config.weights.parent / LOSSES_NAME
    if losses is not None and losses.is_file():
        with atomic_path(trial_dir / LOSSES_NAME, suffix=".csv") as tmp:
            shutil.copyfile(losses, tmp)


def write_gan_views(
    cfg: SweepConfig, artifacts: SweepArtifacts, generator: SweepGenerator, synthetic_dir: Path, trial_dir: Path
) -> None:
    """What the NYU study read for each GAN, as files of the trial (the report draws them): the GAN job's losses.csv,
    copied beside result.json when the sweep trained the generator, and tsne.csv, a seeded t-SNE of real against
    generated features in the metrics' leading feature space (analysis/embedding.py)."""
    copy_loss_curves(generator, trial_dir)
    space = cfg.metrics.extractors[0]
    extractor = space_extractor(cfg, space, artifacts.extractor_path)
    fake = shard_image_set(synthetic_dir, POINTS_PER_SIDE)  # only the images embedded are read
    fake_ND = extract_real(fake, extractor, keep_features=True, per_class=False, options=metric_options(cfg)).feats_ND
    reference = artifacts.references[space]
    real_ND = np.load(reference / "features.npy", mmap_mode="r")  # the real side the metrics compare with
    embedding = tsne_embedding(real_ND, np.load(reference / "labels.npy"), fake_ND.numpy(), fake.source.labels_N,
                               seed=cfg.sample.seed)  # fmt: skip
    write_embedding(trial_dir / EMBEDDING_NAME, embedding, fake.class_names)
    log.info("t-SNE of %d real and %d generated images in the %s space: %s", len(embedding["label"]) // 2,
             len(embedding["label"]) // 2, space, trial_dir / EMBEDDING_NAME)  # fmt: skip


def real_quality(artifacts: SweepArtifacts) -> dict:
    """The real row's numbers in every feature space, and GAN-test of real data: the real-data classifier on the
    real test split."""
    gan_test = 1 - read_scores(artifacts.extractor_path.parent)["top1_error"]
    return {"quality": real_row_quality(artifacts.references), "gan_test_accuracy": gan_test}


def classifier_scores(
    cfg: SweepConfig, train_dir: Path, artifacts: SweepArtifacts, trial_dir: Path, launch: Launch
) -> dict:
    """Train cfg.classifier on train_dir as a data-parallel job and test it on the real test split."""
    job = ClassifierJob(
        classifier=cfg.classifier,
        engine=cfg.engine,
        train_dir=train_dir,
        test_dir=artifacts.real_test_dir,
        out_dir=trial_dir,
        on_bad_sample=cfg.data.on_bad_sample,
    )
    run_data_parallel(classifier_worker, job, launch=launch, name=f"classifier-{trial_dir.name}")
    scores = read_scores(trial_dir)
    if scores["resumed_from_step"] is not None:  # e.g. a retry of a trial whose worker died
        log.info(
            "classifier job of %s resumed from its checkpoint at step %d and trained %d more steps",
            trial_dir.name, scores["resumed_from_step"], scores["num_steps_trained"],
        )  # fmt: skip
    return scores


def result_record(
    cfg: SweepConfig,
    artifacts: SweepArtifacts,
    training: TrainingSet,
    *,
    generator: SweepGenerator | None,
    train_dir: Path,
    scores: dict,
    quality: dict,
    trial_dir: Path,
    launch: Launch,
    started: float,
) -> dict:
    """result.json of a trial: scores, quality, what made them (configs, digests, versions, node)."""
    return {
        "sweep": cfg.name,
        "space": cfg.space,
        "experiment": training.experiment,
        "trial": trial_dir.name,
        "training_set": training.kind,
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
        "feature_spaces": describe_spaces(cfg, artifacts.extractor_path),
        "real_row_splits": REAL_ROW_SPLITS if training.real else None,
        "digests": {
            "train_manifest_sha256": manifest_digest(train_dir),
            "test_manifest_sha256": manifest_digest(artifacts.real_test_dir),
            "generator_sha256": None if generator is None else generator.sha256,
            "extractor_sha256": sha256_of(artifacts.extractor_path),
        },
        "workers": launch.workers,
        "node": {"hostname": platform.node(), "ray_node_id": _ray_node_id()},
        "versions": {"distgan": distgan.__version__, "torch": torch.__version__, "ray": ray.__version__},
        "config": to_dict(cfg),
        "wall_time_sec": time.time() - started,
    }


def gan_fields(generator: SweepGenerator | None) -> dict | None:
    """The report's GAN columns of a GAN the sweep trained (None for a user's generator and the real row)."""
    if generator is None or generator.gan is None:
        return None
    gan = generator.gan.resolved()  # the loss's defaults filled in, as training used them
    return {field: getattr(gan, field) for field in GAN_FIELDS}


def run_classification_trial(
    cfg: SweepConfig,
    artifacts: SweepArtifacts,
    training: TrainingSet,
    *,
    generator: SweepGenerator | None,
    trial_dir: Path,
    launch: Launch,
) -> dict:
    """One row of Table 1 (replacement), of the augmentation table, or of the GAN-test table. Writes
    and returns result.json."""
    started = time.time()
    trial_dir.mkdir(parents=True, exist_ok=True)
    if training.real:
        train_dir, used_generator = artifacts.real_train_dir, None
        quality = real_quality(artifacts)
    else:
        used_generator = generator
        synthetic_dir = prepare_synthetic_shards(
            cfg, artifacts.real_train_dir, generator, training.knob_value, launch, root=cache_root(cfg)
        )
        views_of = generator if training.experiment == "gan-test" else None  # its loss curves and t-SNE
        quality = synthetic_quality(cfg, artifacts, synthetic_dir, trial_dir, views_of=views_of)
        train_dir = synthetic_dir
        if training.fraction:
            train_dir = prepare_mixture(cfg, artifacts.real_train_dir, synthetic_dir, training.fraction)
    scores = classifier_scores(cfg, train_dir, artifacts, trial_dir, launch)
    result = result_record(
        cfg,
        artifacts,
        training,
        generator=used_generator,
        train_dir=train_dir,
        scores=scores,
        quality=quality,
        trial_dir=trial_dir,
        launch=launch,
        started=started,
    )
    write_json_atomic(trial_dir / RESULT_NAME, result)
    return result


def _ray_node_id() -> str | None:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def finite_scalars(result: dict) -> dict:
    """The scalar metrics of a result, for Ray Tune's reporter, each sample metric under its feature space's label
    (absent and non-finite ones left out)."""
    values = {key: result.get(key) for key in SCORES}
    for space, scores in (result.get("quality") or {}).items():
        values |= {labelled(metric, space): scores.get(metric) for metric in QUALITY_SCORES}
    return {key: float(value) for key, value in values.items() if value is not None and np.isfinite(value)}
