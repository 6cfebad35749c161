"""Sample quality of an image set through an in-memory classifier (the sweep's "domain" extractor): IS and FID.

Used by `distgan/experiments` (artifacts.py, classification.py); a thin layer over the metrics engine
(extraction.py, reference_stats.py) with the classifier wrapped as an extractor.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from distgan.metrics.extraction import ImageSource
from distgan.metrics.extraction import extract as extract_source
from distgan.metrics.extractors import wrap_model
from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score
from distgan.metrics.reference_stats import ReferenceStats, load_stats, save_pytorch_fid_npz


def extract(extractor: nn.Module, images_NHWC: np.ndarray, batch_size: int = 500) -> tuple[FeatureStats, torch.Tensor]:
    """Streaming feature statistics and the logits (N, K) of every image."""
    # local: the sweep calls this in one process (the trial driver); it must never wait on other ranks.
    source = ImageSource.from_array(images_NHWC)
    result = extract_source(wrap_model("domain", extractor), source, batch_size=batch_size, local=True)
    return result.stats, result.logits_NK


def save_reference_stats(path: Path, stats: FeatureStats) -> None:
    """μ and Σ in pytorch-fid's .npz layout (keys `mu`, `sigma`)."""
    save_pytorch_fid_npz(path, ReferenceStats.from_stats(stats))


def load_reference_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """μ and Σ from a pytorch-fid (or distgan) statistics file."""
    ref = load_stats(path)
    return ref.mu_D, ref.sigma_DD


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
