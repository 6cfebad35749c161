"""The scoring jobs: the numbers of an image set in every feature space, computed on the job's workers — the same
world and devices as a trial's classifier — each rank extracting its share, statistics reduced with one collective
per pass (metrics/engine.compute).

- `ReferenceJob`: a feature space's real side, once per sweep: the real training split's statistics and kept
  features, and the real row's numbers (IS of the real test split; FID/KID of the test split against the training
  split).
- `ScoringJob`: a generated set's numbers in every space, its GAN-test accuracy (the domain classifier tested on
  it, Shmelkov et al.), its sample grid and, for GAN trials, a t-SNE of it against the real side.
"""

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from distgan.analysis.embedding import EMBEDDING_NAME, POINTS_PER_SIDE, tsne_embedding, write_embedding
from distgan.analysis.sample_grid import sample_grid
from distgan.config import ClassifierConfig, MetricsConfig
from distgan.data.manifest import read_manifest
from distgan.data.selection import ShardSelection
from distgan.jobs.stages import recorded_stage
from distgan.layout import QUALITY_FILE, SAMPLES_FILE
from distgan.metrics.engine import METRICS, MetricOptions, RealFeatures, applicable, compute, extract_real
from distgan.metrics.extractors import Extractor, build_extractor
from distgan.metrics.inputs import shard_image_set
from distgan.metrics.reference_stats import load_stats, save_stats
from distgan.models.classifiers import load_classifier
from distgan.runtime import distributed
from distgan.runtime.atomic import write_json_atomic
from distgan.train.batches import open_split
from distgan.train.classifier import evaluate_classifier

REAL_ROW_FILE = "real_row.json"
HELDOUT_FILE = "heldout_features.npy"  # the real test split's features in a space (copy rate, C_T)
REAL_ROW_SPLITS = "IS: real test split; FID and KID: real test split against the real training split"
GRID_POOL = 2000  # the sample grid takes each class's first images among the set's first GRID_POOL


@dataclass(frozen=True, kw_only=True)
class FeatureSpaces:
    """The feature spaces a sweep scores in, and where their networks come from."""

    metrics: MetricsConfig
    domain_model: Path  # the domain classifier (model.pt): the domain space and every GAN-test accuracy
    weights_dir: Path  # downloaded or unpacked weights (layout.SweepPaths.weights_dir)

    def extractor(self, name: str) -> Extractor:
        """The network of space `name`, built once per process."""
        weights = self.domain_model if name == "domain" else self.metrics.weights_of(name)
        return _extractor(name, weights, self.weights_dir)

    def options(self, *, local: bool) -> MetricOptions:
        """`local`: one rank extracts alone (no collective), e.g. rank 0 drawing a t-SNE."""
        m = self.metrics
        return MetricOptions(is_splits=m.is_splits, kid_subsets=m.kid_subsets, kid_subset_size=m.kid_subset_size,
                             copy_quantile=m.copy_quantile, local=local)  # fmt: skip

    def metrics_of(self, name: str) -> list[str]:
        return applicable(list(self.metrics.metrics), self.extractor(name))

    def real_row_metrics(self, name: str) -> list[str]:
        """The real row's: the space's metrics but those against held-out images (copy rate, C_T), which the real
        test split, the held-out sample itself, cannot be scored by."""
        return [metric for metric in self.metrics_of(name) if not METRICS[metric].needs_heldout]

    def needs_heldout(self, name: str) -> bool:
        return any(METRICS[metric].needs_heldout for metric in self.metrics_of(name))


@functools.cache
def _extractor(name: str, weights: Path | None, weights_dir: Path) -> Extractor:
    return build_extractor(name, weights, weights_dir)


def save_reference(directory: Path, real: RealFeatures) -> None:
    """A space's real side as files: stats.npz, features.npy, labels.npy (and the real test split's features,
    heldout_features.npy, for the memorisation metrics)."""
    save_stats(directory / "stats.npz", real.stats)
    np.save(directory / "features.npy", real.feats_ND.numpy())
    np.save(directory / "labels.npy", real.labels_N)
    if real.heldout_feats_ND is not None:
        np.save(directory / HELDOUT_FILE, real.heldout_feats_ND.numpy())


@functools.cache
def load_reference(directory: Path) -> RealFeatures:
    """A space's real side written by `save_reference`, loaded once per process. The features are memory-mapped
    (copy-on-write, so torch gets a writable array; nothing writes it): per-class scores read one class's rows."""
    heldout = directory / HELDOUT_FILE
    features = np.load(directory / "features.npy", mmap_mode="c")
    return RealFeatures(load_stats(directory / "stats.npz"), torch.from_numpy(features),
                        np.load(directory / "labels.npy"),
                        torch.from_numpy(np.load(heldout)) if heldout.is_file() else None)  # fmt: skip


def read_real_row(directory: Path) -> dict:
    return json.loads((directory / REAL_ROW_FILE).read_text())


@dataclass(frozen=True, kw_only=True)
class ReferenceJob:
    """The real side of feature space `space`, written to out_dir (`save_reference` + real_row.json)."""

    spaces: FeatureSpaces
    space: str
    real_train_dir: Path
    real_test_dir: Path
    out_dir: Path


def reference_worker(job: ReferenceJob) -> None:
    """Every rank extracts its share of the real training split, then of the test split; rank 0 writes."""
    extractor, options = job.spaces.extractor(job.space), job.spaces.options(local=False)
    num_images = job.spaces.metrics.num_images
    train = shard_image_set(job.real_train_dir, num_images)
    real = extract_real(train, extractor, keep_features=True, per_class=True, options=options)
    test = shard_image_set(job.real_test_dir, num_images)
    if job.spaces.needs_heldout(job.space):  # copy rate and C_T compare generated images with held-out ones
        heldout = extract_real(test, extractor, keep_features=True, per_class=False, options=options)
        real = replace(real, heldout_feats_ND=heldout.feats_ND)
    row = compute(real, test, metrics=job.spaces.real_row_metrics(job.space), extractor=extractor, per_class=True,
                  options=options)  # fmt: skip
    if distributed.rank() == 0:
        save_reference(job.out_dir, real)
        write_json_atomic(job.out_dir / REAL_ROW_FILE, row | {"splits": REAL_ROW_SPLITS})


@dataclass(frozen=True, kw_only=True)
class ScoringJob:
    """Score the generated set in synthetic_dir against each space's real side (`references`: space -> directory);
    write quality.json, the sample grid (and, with `tsne_seed`, tsne.csv) to out_dir, the trial's directory."""

    spaces: FeatureSpaces
    references: dict[str, Path]
    synthetic_dir: Path
    classifier: ClassifierConfig  # how GAN-test reads the set (loader, backend)
    out_dir: Path
    tsne_seed: int | None = None  # a t-SNE of real against generated features in the leading space (GAN trials)


def scoring_worker(job: ScoringJob) -> None:
    """Every rank extracts its share of the set in each space and scores its share of GAN-test; rank 0 draws the grid
    (and t-SNE) and writes quality.json: {"quality": {space: scores}, "gan_test_accuracy", "sampling"}."""
    with recorded_stage(job.out_dir, "score"):
        fake = shard_image_set(job.synthetic_dir, job.spaces.metrics.num_images)
        quality = {}
        for name, directory in job.references.items():
            quality[name] = compute(load_reference(directory), fake, metrics=job.spaces.metrics_of(name),
                                    extractor=job.spaces.extractor(name), per_class=True,
                                    options=job.spaces.options(local=False))  # fmt: skip
        domain = load_classifier(job.spaces.domain_model).to(distributed.select_device())
        gan_test = 1 - evaluate_classifier(domain, open_split(job.synthetic_dir, job.classifier))["top1_error"]
        if distributed.rank() == 0:
            _draw_grid(job.synthetic_dir, job.out_dir / SAMPLES_FILE)
            if job.tsne_seed is not None:
                _draw_tsne(job)
            sampling = read_manifest(job.synthetic_dir)["provenance"]["sampling"]
            record = {"quality": quality, "gan_test_accuracy": gan_test, "sampling": sampling}
            write_json_atomic(job.out_dir / QUALITY_FILE, record)


def read_quality(out_dir: Path) -> dict:
    return json.loads((out_dir / QUALITY_FILE).read_text())


def _draw_grid(synthetic_dir: Path, path: Path) -> None:
    """The grid reads the set's first images only (1.28 M for ImageNet)."""
    first = ShardSelection(synthetic_dir, np.arange(min(GRID_POOL, read_manifest(synthetic_dir)["num_samples"])))
    sample_grid(first.images(0, len(first)), first.labels_N, path)


def _draw_tsne(job: ScoringJob) -> None:
    """tsne.csv: a seeded t-SNE of real against generated features in the leading feature space
    (analysis/embedding.py); only the images embedded are read."""
    space = job.spaces.metrics.extractors[0]
    extractor = job.spaces.extractor(space)
    fake = shard_image_set(job.synthetic_dir, POINTS_PER_SIDE)
    fake_ND = extract_real(fake, extractor, keep_features=True, per_class=False,
                           options=job.spaces.options(local=True)).feats_ND  # fmt: skip
    reference = job.references[space]
    real_ND = np.load(reference / "features.npy", mmap_mode="r")  # the real side the metrics compare with
    embedding = tsne_embedding(real_ND, np.load(reference / "labels.npy"), fake_ND.numpy(), fake.source.labels_N,
                               seed=job.tsne_seed)  # fmt: skip
    write_embedding(job.out_dir / EMBEDDING_NAME, embedding, fake.class_names)
