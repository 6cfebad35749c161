"""Metrics against the peers' own code on the same inputs: pytorch-fid's Fréchet distance,
torch-fidelity's Inception Score, numpy's covariance; and classification counts by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from distgan.data.sources import load_split
from distgan.errors import DataError
from distgan.metrics.classification import ClassificationCounts
from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.fid import factor_reference, frechet_distance, frechet_distance_to
from distgan.metrics.inception_score import inception_score
from distgan.metrics.reference_stats import ReferenceStats, load_stats, save_pytorch_fid_npz, save_stats
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


# Factored real side. d = 512, not 2048: pytorch-fid's sqrtm took 9-45 s at 2048 here (0.3 s at 512, one thread);
# benchmarks/bench_fid.py compares at 2048.
FACTOR_DIM = 512


def _mean_cov(feats_ND: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats_ND.mean(0), np.cov(feats_ND, rowvar=False)


def _full_rank_features(dim: int) -> np.ndarray:
    """As `_real_features`, from centred pixels: every unit fires on some images (uncentred, 15 of 512 never do),
    so Σ has full rank once there are more images than dimensions."""
    images = load_split("digits", "train").images_NHWC.reshape(1437, -1).astype(np.float64) / 255
    projection = np.random.default_rng(0).normal(size=(images.shape[1], dim))
    return np.maximum((images - images.mean(0)) @ projection, 0)


@pytest.fixture(scope="module")
def digits_512():
    return _full_rank_features(FACTOR_DIM)


@pytest.fixture
def one_blas_thread():
    """On this shared 2-core machine OpenBLAS's two threads wait on each other whenever other jobs hold a core: under
    load the tests below took 76 s with two threads, 3 s with one."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("num_real", [900, 300])  # more images than dimensions, and fewer: Σ_real singular
def test_factored_real_side_equals_pytorch_fid(pytorch_fid_frechet, digits_512, num_real, one_blas_thread):
    mu_real, sigma_real = _mean_cov(digits_512[:num_real])
    mu_fake, sigma_fake = _mean_cov(digits_512[600:] * 1.1)
    assert (np.linalg.matrix_rank(sigma_real) < FACTOR_DIM) == (num_real < FACTOR_DIM)
    ours = frechet_distance_to(factor_reference(mu_real, sigma_real), mu_fake, sigma_fake)
    assert ours > 1.0
    assert ours == pytest.approx(pytorch_fid_frechet(mu_real, sigma_real, mu_fake, sigma_fake), rel=1e-6)


def test_one_factor_scores_many_sets_as_pytorch_fid(pytorch_fid_frechet, one_blas_thread):
    """A truncation sweep in small: one factor, three fake sets (the last with fewer images than dimensions)."""
    feats = _full_rank_features(256)
    mu_real, sigma_real = _mean_cov(feats[:900])
    factor = factor_reference(mu_real, sigma_real)
    root_before = factor.sqrt_sigma_DD.copy()
    scores = []
    for scale, rows in ((0.9, slice(500, 1437)), (1.0, slice(700, 1437)), (1.25, slice(1100, 1300))):
        mu_fake, sigma_fake = _mean_cov(feats[rows] * scale)
        ours = frechet_distance_to(factor, mu_fake, sigma_fake)
        assert ours == pytest.approx(pytorch_fid_frechet(mu_real, sigma_real, mu_fake, sigma_fake), rel=1e-6)
        assert ours == pytest.approx(frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake), rel=1e-12)
        scores.append(ours)
    assert len(set(scores)) == 3 and min(scores) > 1.0
    np.testing.assert_array_equal(factor.sqrt_sigma_DD, root_before)  # scoring leaves the factor as it was
    assert frechet_distance_to(factor, mu_real, sigma_real) == pytest.approx(0.0, abs=1e-8 * factor.trace_sigma)


def test_stats_file_keeps_the_factor_and_other_layouts_give_the_same_fid(tmp_path, digits_512, one_blas_thread):
    ref = ReferenceStats(*_mean_cov(digits_512[:900]), count=900, identity={"k": 1})
    mu_fake, sigma_fake = _mean_cov(digits_512[600:] * 1.1)
    expected = ref.fid_of(mu_fake, sigma_fake)
    assert ref.real_factor is ref.real_factor  # computed once, kept on the object
    save_stats(tmp_path / "ours.npz", ref)
    save_pytorch_fid_npz(tmp_path / "theirs.npz", ref)
    with np.load(tmp_path / "ours.npz") as data:  # an older distgan file: ours without sqrt_sigma
        np.savez(tmp_path / "older.npz", **{key: data[key] for key in data.files if key != "sqrt_sigma"})
    ours, theirs, older = (load_stats(tmp_path / f"{name}.npz") for name in ("ours", "theirs", "older"))
    np.testing.assert_array_equal(ours.sqrt_sigma_DD, ref.sqrt_sigma_DD)  # read back: no eigh on load or use
    assert theirs.sqrt_sigma_DD is None and older.sqrt_sigma_DD is None and older.count == 900
    for loaded in (ours, theirs, older):
        assert loaded.fid_of(mu_fake, sigma_fake) == pytest.approx(expected, rel=1e-12)
    assert theirs.sqrt_sigma_DD is not None  # computed on first use
    read_npz = load_function(
        "pytorch_fid", "fid_score.py", "compute_statistics_of_path",
        ("torchvision", "torchvision.transforms", "pytorch_fid.inception"),
    )  # fmt: skip
    mu, sigma = read_npz(str(tmp_path / "ours.npz"), None, 50, FACTOR_DIM, "cpu", 1)  # pytorch-fid reads our file
    np.testing.assert_array_equal(mu, ref.mu_D)
    np.testing.assert_array_equal(sigma, ref.sigma_DD)


def test_stats_file_whose_root_is_not_of_its_sigma_is_refused(tmp_path, digits_512, one_blas_thread):
    ref = ReferenceStats(*_mean_cov(digits_512[:900]))
    save_stats(tmp_path / "stale.npz", ref)
    with np.load(tmp_path / "stale.npz") as data:
        arrays = {key: data[key] for key in data.files} | {"sigma": ref.sigma_DD * 1.001}
    np.savez(tmp_path / "stale.npz", **arrays)
    with pytest.raises(DataError, match="stale.npz: sqrt_sigma is not the square root of sigma"):
        load_stats(tmp_path / "stale.npz")
