"""Per-class IS, FID and KID of a conditional generator from the one extraction pass of each set (the labelled
logits and kept features): each class's generated images against that class's real ones.

Class by class, in memory independent of the class count: one class's feature rows of each side are read (the real
side's may be a memory-mapped `features.npy`, of which only those rows are touched), scored and dropped, so at most
one class's D×D matrices exist at a time, and none for classes with few images (fid.frechet_distance_of_features).
Keeping K classes' float64 Σxxᵀ instead cost K·D²·8 bytes: 33.5 GB at 1,000 classes and D = 2048.

Per-class FID is biased upwards at small counts (Ravuri & Vinyals 2019, Figure 1; Bińkowski et al. 2018), so
every class's entry carries its counts and the unbiased KID beside it. Per-class FID and KID rest on the kept
features (the first `max_kept_features` images of a set); a sweep's `metrics.num_images` spreads its images evenly
over the set, so every class is among them.
"""

import logging
from collections.abc import Callable

import numpy as np
import torch

from distgan.metrics.extraction import Extraction
from distgan.metrics.fid import frechet_distance_of_features
from distgan.metrics.inception_score import inception_score

log = logging.getLogger(__name__)


def class_rows(labels_N: np.ndarray) -> dict[int, np.ndarray]:
    """{label: the ascending row indices of that class}, by one stable sort (not one scan of N per class)."""
    order = np.argsort(labels_N, kind="stable")
    labels, starts = np.unique(labels_N[order], return_index=True)
    return dict(zip(labels.tolist(), np.split(order, starts[1:]), strict=True))


def _kept_rows(feats_ND: torch.Tensor | None, labels_N: np.ndarray | None) -> dict[int, np.ndarray]:
    """Rows of the kept features per class (kept features are the first rows, in image order)."""
    if feats_ND is None or labels_N is None:
        return {}
    return class_rows(np.asarray(labels_N[: len(feats_ND)]))


def _float64_rows(feats_ND: torch.Tensor, rows: np.ndarray) -> np.ndarray:
    return feats_ND[torch.as_tensor(rows)].double().numpy()


def per_class_scores(fake: Extraction, real, *, is_splits: int, class_names: list[str] | None,
                     kid: Callable[[np.ndarray, np.ndarray], dict]) -> dict[str, dict]:  # fmt: skip
    """{class name: {"num_samples", "num_real", "inception_score_mean", "inception_score_std", "is_splits", "fid",
    "kid_mean", "kid_std", "kid_subset_size"}} for every generated class, each score where its inputs exist: IS
    with class logits (one split when a class has fewer images than splits), FID and KID with ≥ 2 kept features
    of the class on both sides. `real`: engine.RealFeatures or None."""
    fake_rows = class_rows(fake.labels_N)
    fake_kept = _kept_rows(fake.feats_ND, fake.labels_N)
    real_labelled = real is not None and real.labels_N is not None
    real_counts = {label: len(rows) for label, rows in class_rows(real.labels_N).items()} if real_labelled else {}
    real_kept = _kept_rows(real.feats_ND, real.labels_N) if real is not None else {}
    _warn_if_not_all_kept(fake, fake_rows, fake_kept)
    scores = {}
    for label, rows in fake_rows.items():
        entry: dict = {"num_samples": len(rows)}
        if real_labelled:
            entry["num_real"] = int(real_counts.get(label, 0))
        if fake.logits_NK is not None and fake.logits_NK.shape[1] > 0:
            logits = fake.logits_NK[torch.as_tensor(rows)]
            splits = is_splits if len(logits) >= is_splits else 1
            entry["inception_score_mean"], entry["inception_score_std"] = inception_score(logits, splits=splits)
            entry["is_splits"] = splits
        if label in fake_kept and label in real_kept:
            # This class's rows only: the real side's are read here (from disk when memory-mapped) and dropped.
            real_ND, fake_ND = (
                _float64_rows(real.feats_ND, real_kept[label]),
                _float64_rows(fake.feats_ND, fake_kept[label]),
            )
            if min(len(real_ND), len(fake_ND)) >= 2:
                entry["fid"] = frechet_distance_of_features(real_ND, fake_ND)
            entry |= kid(real_ND, fake_ND)
        scores[class_names[label] if class_names else str(label)] = entry
    return scores


def _warn_if_not_all_kept(fake: Extraction, fake_rows: dict, fake_kept: dict) -> None:
    if fake.feats_ND is not None and len(fake.feats_ND) < len(fake.labels_N):
        missing = sum(1 for label in fake_rows if label not in fake_kept)
        log.warning("per-class FID and KID rest on the first %d of %d images (the kept features)%s; a sweep's "
                    "--metrics.num-images spreads the images it scores over every class",
                    len(fake.feats_ND), len(fake.labels_N),
                    f": {missing} classes have none" if missing else "")  # fmt: skip
