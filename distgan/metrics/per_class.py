"""Per-class FID and IS of a conditional generator, from the one extraction pass (class-wise statistics and the
labelled logits): each class's fake statistics against that class's real statistics."""

import numpy as np
import torch

from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score


def per_class_scores(
    real_class_stats: dict[int, tuple[np.ndarray, np.ndarray]],
    fake_class_stats: dict[int, FeatureStats] | None,
    fake_logits_NK: torch.Tensor | None,
    fake_labels_N: np.ndarray,
    *,
    is_splits: int,
    class_names: list[str] | None = None,
) -> dict[str, dict]:
    """{class name: {"fid", "inception_score_mean", "inception_score_std", "num_samples"}} for every fake class.
    A class with fewer images than IS splits is scored with one split; FID needs ≥ 2 images and real statistics."""
    scores = {}
    for label in sorted(np.unique(fake_labels_N).tolist()):
        name = class_names[label] if class_names else str(label)
        mask = fake_labels_N == label
        entry: dict = {"num_samples": int(mask.sum())}
        if fake_logits_NK is not None:
            logits = fake_logits_NK[torch.as_tensor(mask)]
            splits = is_splits if len(logits) >= is_splits else 1
            entry["inception_score_mean"], entry["inception_score_std"] = inception_score(logits, splits=splits)
            entry["is_splits"] = splits
        if fake_class_stats is not None and label in real_class_stats and fake_class_stats[label].count >= 2:
            entry["fid"] = frechet_distance(*fake_class_stats[label].mean_and_covariance(), *real_class_stats[label])
        scores[name] = entry
    return scores
