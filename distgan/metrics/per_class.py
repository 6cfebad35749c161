"""Per-class IS, FID and KID of a conditional generator from the one extraction pass of each set (class-wise
statistics, the labelled logits and kept features): each class's generated images against that class's real ones.

Per-class FID is biased upwards at small counts (Ravuri & Vinyals 2019, Figure 1; Bińkowski et al. 2018), so
every class's entry carries its counts and, where features were kept, the unbiased KID beside it.
"""

from collections.abc import Callable

import numpy as np
import torch

from distgan.metrics.extraction import Extraction
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score


def _rows_of(feats_ND: torch.Tensor | None, labels_N: np.ndarray | None, label: int) -> torch.Tensor | None:
    """The kept features of one class (kept features are the first rows, in image order)."""
    if feats_ND is None or labels_N is None:
        return None
    return feats_ND[torch.as_tensor(labels_N[: len(feats_ND)] == label)]


def per_class_scores(fake: Extraction, real, *, is_splits: int, class_names: list[str] | None,
                     kid: Callable[[torch.Tensor, torch.Tensor], dict]) -> dict[str, dict]:  # fmt: skip
    """{class name: {"num_samples", "num_real", "inception_score_mean", "inception_score_std", "is_splits", "fid",
    "kid_mean", "kid_std", "kid_subset_size"}} for every generated class, each score where its inputs exist: IS
    with class logits (one split when a class has fewer images than splits), FID with ≥ 2 images of the class
    on both sides, KID with kept features on both sides. `real`: engine.RealFeatures or None."""
    scores = {}
    real_classes = (real.stats.class_stats or {}) if real is not None else {}
    for label in sorted(np.unique(fake.labels_N).tolist()):
        mask = fake.labels_N == label
        entry: dict = {"num_samples": int(mask.sum())}
        if real is not None and real.labels_N is not None:
            entry["num_real"] = int((real.labels_N == label).sum())
        if fake.logits_NK is not None and fake.logits_NK.shape[1] > 0:
            logits = fake.logits_NK[torch.as_tensor(mask)]
            splits = is_splits if len(logits) >= is_splits else 1
            entry["inception_score_mean"], entry["inception_score_std"] = inception_score(logits, splits=splits)
            entry["is_splits"] = splits
        fake_stats = (fake.class_stats or {}).get(label)
        if fake_stats is not None and fake_stats.count >= 2 and label in real_classes:
            entry["fid"] = frechet_distance(*fake_stats.mean_and_covariance(), *real_classes[label])
        real_rows = _rows_of(real.feats_ND, real.labels_N, label) if real is not None else None
        fake_rows = _rows_of(fake.feats_ND, fake.labels_N, label)
        if real_rows is not None and fake_rows is not None:
            entry |= kid(real_rows, fake_rows)
        scores[class_names[label] if class_names else str(label)] = entry
    return scores
