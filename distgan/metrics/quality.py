"""Sample quality of an image set through a feature extractor: Inception Score and FID.

The extractor is any network with `features(x)` (penultimate activations) and `forward(x)` (logits):
offline, a classifier trained on the real training split (the "domain" extractor, docs/concepts.md).
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from distgan.data.transforms import to_model_input
from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score


@torch.no_grad()
def extract(extractor: nn.Module, images_NHWC: np.ndarray, batch_size: int = 500) -> tuple[FeatureStats, torch.Tensor]:
    """Streaming feature statistics and the logits (N, K) of every image."""
    extractor.eval()
    device = next(extractor.parameters()).device
    stats, logits = None, []
    for start in range(0, images_NHWC.shape[0], batch_size):
        x = to_model_input(images_NHWC[start : start + batch_size]).to(device)
        feats = extractor.features(x)
        if stats is None:
            stats = FeatureStats.empty(feats.shape[1], device)
        stats.update(feats)
        logits.append(extractor.head(feats).cpu())
    return stats, torch.cat(logits)


def save_reference_stats(path: Path, stats: FeatureStats) -> None:
    """μ and Σ in pytorch-fid's .npz layout (keys `mu`, `sigma`)."""
    mu, sigma = stats.mean_and_covariance()
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, mu=mu, sigma=sigma)
    tmp.replace(path)


def load_reference_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["mu"], data["sigma"]


def sample_quality(
    extractor: nn.Module, images_NHWC: np.ndarray, reference: tuple[np.ndarray, np.ndarray], *, is_splits: int
) -> dict:
    """IS (mean, std over splits) of the images and their FID against the reference statistics."""
    stats, logits = extract(extractor, images_NHWC)
    is_mean, is_std = inception_score(logits, splits=is_splits)
    mu, sigma = stats.mean_and_covariance()
    return {
        "inception_score_mean": is_mean,
        "inception_score_std": is_std,
        "fid": frechet_distance(mu, sigma, *reference),
    }
