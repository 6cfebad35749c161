"""Metrics against the peers' own code on the same inputs: pytorch-fid's Fréchet distance,
torch-fidelity's Inception Score, numpy's covariance; and classification counts by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distgan.data.sources import load_split
from distgan.metrics.classification import ClassificationCounts
from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score
from distgan.peers import load_function


@pytest.fixture(scope="module")
def pytorch_fid_frechet():
    return load_function(
        "pytorch_fid", "fid_score.py", "calculate_frechet_distance",
        ("torchvision", "torchvision.transforms", "pytorch_fid.inception"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def torch_fidelity_isc():
    return load_function(
        "torch_fidelity", "metric_isc.py", "isc_features_to_metric", ("torch_fidelity.helpers", "torch_fidelity.utils")
    )


def _real_features(dim: int, seed: int) -> np.ndarray:
    """Features with real structure: digits pixels through a fixed random projection and a ReLU."""
    images = load_split("digits", "train").images_NHWC.reshape(1437, -1).astype(np.float64) / 255
    projection = np.random.default_rng(seed).normal(size=(images.shape[1], dim))
    return np.maximum(images @ projection, 0)


@pytest.mark.parametrize("method", ["cholesky", "eigh"])
@pytest.mark.parametrize("dim", [16, 64])
def test_frechet_distance_equals_pytorch_fid(pytorch_fid_frechet, dim, method):
    a, b = _real_features(dim, 0), _real_features(dim, 1)[:700] * 1.1 + 0.3
    mu1, sigma1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, sigma2 = b.mean(0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu1, sigma1, mu2, sigma2, method=method)
    reference = pytorch_fid_frechet(mu1, sigma1, mu2, sigma2)
    assert ours > 1.0
    assert ours == pytest.approx(reference, rel=1e-6)
    assert frechet_distance(mu1, sigma1, mu1, sigma1, method=method) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_singular_covariances_falls_back_to_eigh(pytorch_fid_frechet):
    """Fewer images than dimensions: Σ₁ is singular, has no Cholesky factor; the eigh path answers."""
    a, b = _real_features(96, 0)[:40], _real_features(96, 0)[40:90] * 0.9
    mu1, sigma1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, sigma2 = b.mean(0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu1, sigma1, mu2, sigma2, method="cholesky")
    assert ours == frechet_distance(mu1, sigma1, mu2, sigma2, method="eigh")
    assert ours == pytest.approx(pytorch_fid_frechet(mu1, sigma1, mu2, sigma2), rel=1e-5)


def test_streaming_stats_equal_numpy_cov_in_any_batching():
    feats = _real_features(32, 2)
    stats = FeatureStats.empty(32)
    for start in range(0, len(feats), 100):  # uneven last batch
        stats.update(torch.from_numpy(feats[start : start + 100]).float())
    mu, sigma = stats.mean_and_covariance()
    as_float32 = feats.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu, as_float32.mean(0), rtol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(as_float32, rowvar=False), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("splits", [1, 10])
def test_inception_score_equals_torch_fidelity(torch_fidelity_isc, splits):
    logits = torch.from_numpy(_real_features(10, 3)[:1000]).float() * 0.2
    mean, std = inception_score(logits, splits=splits)
    reference = torch_fidelity_isc(logits, splits=splits)
    assert mean == pytest.approx(reference["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(reference["inception_score_std"], rel=1e-9, abs=1e-12)
    assert 1.0 < mean <= 10.0


def test_inception_score_extremes():
    confident_uniform = F.one_hot(torch.arange(1000) % 10, 10).float() * 50
    assert inception_score(confident_uniform, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    one_class = torch.zeros(1000, 10)
    one_class[:, 3] = 50
    assert inception_score(one_class, splits=10)[0] == pytest.approx(1.0, rel=1e-6)


def test_classification_counts_top1_top5_per_class():
    counts = ClassificationCounts.empty(6, k=5)
    logits = torch.tensor(
        [
            [9, 8, 7, 6, 5, 0],  # label 0: top-1 right
            [9, 8, 7, 6, 5, 0],  # label 4: top-5 right only
            [9, 8, 7, 6, 5, 0],  # label 5: both wrong
            [0, 0, 0, 0, 0, 9],  # label 5: top-1 right
        ],
        dtype=torch.float32,
    )
    counts.update(logits, torch.tensor([0, 4, 5, 5]))
    scores = counts.scores()
    assert scores["top1_error"] == pytest.approx(0.5)
    assert scores["top5_error"] == pytest.approx(0.25)
    assert scores["per_class_accuracy"] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.5]
