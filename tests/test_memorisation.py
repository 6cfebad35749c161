"""Memorisation measures (metrics/memorisation.py, metrics/neighbours.py): tiled nearest neighbours equal a direct
N×M matrix; the copy rate is 1 for exact training copies and ≈ q for held-out real data; AuthPct and C_T equal
independent computations (scipy's distance matrix, sklearn's PCA and neighbours, scipy's Mann-Whitney U per cell);
and `distgan metrics --metrics copy,authpct,ct` on digits shards, with its one error for a missing test split."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from distgan.errors import ConfigError
from distgan.metrics.engine import ImageSet, MetricOptions, compute
from distgan.metrics.extraction import ImageSource
from distgan.metrics.extractors import wrap_model
from distgan.metrics.memorisation import (
    CT_MIN_FAKE_PER_CELL,
    authenticity_pct,
    copy_rate,
    data_copying_ct,
    kmeans_cells,
    principal_projection,
)
from distgan.metrics.neighbours import nearest_neighbours
from distgan.metrics.reference_stats import ReferenceStats
from distgan.models.classifiers import save_classifier, small_cnn


def _gaussian(rng: np.random.Generator, n: int, dim: int = 16) -> torch.Tensor:
    """Samples of one fixed mixture of 4 Gaussians: several draws are a training set and held-out data."""
    centres = np.random.default_rng(0).normal(0, 3, size=(4, dim))
    return torch.from_numpy(centres[rng.integers(0, 4, n)] + rng.normal(size=(n, dim))).float()


def test_tiled_nearest_neighbours_equal_a_direct_matrix():
    rng = np.random.default_rng(1)
    query, ref = (
        rng.integers(0, 3, size=(53, 4)).astype(np.float32),
        rng.integers(0, 3, size=(41, 4)).astype(np.float32),
    )
    direct = cdist(query, ref)  # small integer grids: many ties, which must keep the lowest index
    dist, index = nearest_neighbours(torch.from_numpy(query), torch.from_numpy(ref), block=7)
    np.testing.assert_allclose(dist.numpy(), direct.min(1), atol=1e-12)
    np.testing.assert_array_equal(index.numpy(), direct.argmin(1))
    # Self excluded: the diagonal, in tiles that straddle it; a duplicate row is still a neighbour at 0.
    self_direct = cdist(ref, ref)
    np.fill_diagonal(self_direct, np.inf)
    dist, index = nearest_neighbours(ref, ref, exclude_self=True, block=6)
    np.testing.assert_allclose(dist.numpy(), self_direct.min(1), atol=1e-12)
    np.testing.assert_array_equal(index.numpy(), self_direct.argmin(1))
    # Cells: a query looks only in its own cell; a cell without references gives inf and -1.
    query_cells, ref_cells = rng.integers(0, 4, 53), rng.integers(0, 3, 41)
    masked = np.where(query_cells[:, None] == ref_cells[None], direct, np.inf)
    dist, index = nearest_neighbours(query, ref, query_cells_Q=query_cells, ref_cells_R=ref_cells, block=5)
    np.testing.assert_allclose(dist.numpy(), masked.min(1), atol=1e-12)
    np.testing.assert_array_equal(index.numpy(), np.where(query_cells == 3, -1, masked.argmin(1)))


def test_copy_rate_is_one_for_copies_and_near_q_for_held_out_data():
    rng = np.random.default_rng(2)
    train, test, new = _gaussian(rng, 3000), _gaussian(rng, 3000), _gaussian(rng, 4000)
    copies = train[rng.permutation(3000)[:1000]]
    assert copy_rate(train, test, copies, quantile=0.01)["copy_rate"] == 1.0
    for q in (0.01, 0.05):
        scores = copy_rate(train, test, new, quantile=q)
        # ±0.01 is about 4 standard deviations of the two sampling errors (4,000 fakes; a quantile of 3,000 tests).
        assert scores["copy_rate"] == pytest.approx(q, abs=0.01) and scores["copy_quantile"] == q
    # The threshold and the rate as one N×M matrix gives them.
    threshold = np.quantile(cdist(test, train).min(1), 0.05)
    assert scores["copy_threshold"] == pytest.approx(threshold, rel=1e-9)
    assert scores["copy_rate"] == np.mean(cdist(new, train).min(1) < threshold)


def _dgm_eval_authpct(train: np.ndarray, fake: np.ndarray) -> float:
    """AuthPct from full matrices, as dgm-eval's compute_authpct defines it, in numpy."""
    train_train = cdist(train, train)
    np.fill_diagonal(train_train, np.inf)
    fake_train = cdist(fake, train)
    nearest = fake_train.argmin(1)
    return 100 * np.mean(train_train.min(1)[nearest] < fake_train.min(1))


def test_authpct_equals_an_independent_computation():
    # By hand: training points 0, 1, 10 have nearest-other distances 1, 1, 9. A fake at 0.2 (nearest 0, 0.2 < 1)
    # and one at 10.5 (nearest 10, 0.5 < 9) are not authentic; one at 5 (nearest 1, 4 > 1) and one at 30 are.
    train, fake = torch.tensor([[0.0], [1.0], [10.0]]), torch.tensor([[0.2], [5.0], [10.5], [30.0]])
    assert authenticity_pct(train, fake)["authpct"] == 50.0 == _dgm_eval_authpct(train.numpy(), fake.numpy())
    rng = np.random.default_rng(3)
    train, fake = _gaussian(rng, 700), _gaussian(rng, 500)
    fake[:100] = train[:100]  # copies are never authentic
    theirs = _dgm_eval_authpct(train.double().numpy(), fake.double().numpy())
    assert authenticity_pct(train, fake)["authpct"] == pytest.approx(theirs, abs=1e-12) and 0 < theirs < 80


def _independent_ct(train, train_cells, test, test_cells, fake, fake_cells) -> float:
    """C_T cell by cell: sklearn's nearest neighbour among the cell's training points, scipy's Mann-Whitney U,
    the Z-score with dgm-eval's continuity term, weighted by the cell's share of test points."""
    z_scores, weights = [], []
    for cell in np.unique(train_cells):
        in_fake, in_test = fake[fake_cells == cell], test[test_cells == cell]
        if len(in_fake) <= CT_MIN_FAKE_PER_CELL:
            continue
        neighbours = NearestNeighbors(n_neighbors=1).fit(train[train_cells == cell])
        fake_dist, test_dist = neighbours.kneighbors(in_fake)[0][:, 0], neighbours.kneighbors(in_test)[0][:, 0]
        u = mannwhitneyu(fake_dist, test_dist, alternative="less").statistic
        m, n = len(in_fake), len(in_test)
        z_scores.append((u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12))
        weights.append(n / len(test))
    return float(np.dot(weights, z_scores) / np.sum(weights))


def test_ct_equals_a_per_cell_mann_whitney_and_detects_copies():
    rng = np.random.default_rng(4)
    train, test, new = _gaussian(rng, 1500), _gaussian(rng, 600), _gaussian(rng, 600)
    half_copies = torch.cat([train[:300], new[:300]])
    scores = {}
    for name, fake in {"new": new, "half_copies": half_copies, "copies": train[700:1300]}.items():
        scores[name] = data_copying_ct(train, test, fake, device="cpu")["ct"]
        cells = kmeans_cells(train.double(), test.double(), fake.double())
        sets = [x.double().numpy() for x in (train, test, fake)]
        assert scores[name] == pytest.approx(_independent_ct(sets[0], cells[0], sets[1], cells[1], sets[2], cells[2]),
                                             rel=1e-9, abs=1e-9)  # fmt: skip
    # Under H0 the cells' Z-scores are about N(0, 1); copies sit at distance 0, every U is 0, and C_T is near its
    # floor of about -√(3nm / (n + m)) ≈ -17 per cell of ~200 test and ~200 generated points.
    assert abs(scores["new"]) < 3 and scores["copies"] < -15 and scores["copies"] < scores["half_copies"] < -3


def test_principal_projection_keeps_sklearn_pca_distances():
    rng = np.random.default_rng(5)
    train, other = rng.normal(size=(400, 96)) @ rng.normal(size=(96, 96)), rng.normal(size=(50, 96))
    ours_train, ours_other = principal_projection(torch.from_numpy(train), torch.from_numpy(other), block=64)
    pca = PCA(n_components=64, svd_solver="full").fit(train)
    for ours, theirs in ((ours_train, pca.transform(train)), (ours_other, pca.transform(other))):
        np.testing.assert_allclose(cdist(ours.numpy(), ours.numpy()), cdist(theirs, theirs), rtol=1e-8, atol=1e-8)


def _distgan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distgan.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_memorisation_of_copied_digits_and_missing_test_split(digits_shards, tmp_path):
    torch.manual_seed(0)
    save_classifier(tmp_path / "model.pt", small_cnn(1, 10), arch="small_cnn", in_channels=1, num_classes=10)
    train, test = str(digits_shards / "train"), str(digits_shards / "test")
    common = ("--extractor", "domain", "--domain-model", str(tmp_path / "model.pt"))
    # The training shards as the generated set: every image is an exact copy.
    done = _distgan("metrics", "--metrics", "copy,authpct,ct", "--real", train, "--real-test", test, "--fake", train,
                    *common)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads(done.stdout)
    assert scores["copy_rate"] == 1.0 and scores["copy_quantile"] == 0.01 and scores["copy_threshold"] > 0
    assert scores["authpct"] == 0.0 and scores["ct"] < -10 and scores["num_real_test"] == 360
    assert all(key in done.stderr for key in ("copy_rate", "authpct", "ct_cells_used"))  # the table
    missing = _distgan("metrics", "--metrics", "authpct,copy", "--real", train, "--fake", test, *common)
    assert missing.returncode == 2 and "error: --real-test is required for copy:" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_refusals_come_before_any_extraction():
    def unread(start: int, stop: int) -> np.ndarray:
        raise AssertionError("an image was read before the refusal")

    extractor = wrap_model("domain", small_cnn(1, 10))
    real, fake = ImageSet(ImageSource(100, None, unread)), ImageSet(ImageSource(60, None, unread))
    cases = {
        "--real-test is required for copy,ct": dict(metrics=["copy", "ct"]),
        r"--real-test: copy need the test images .* not statistics": dict(
            metrics=["copy"], real_test=ReferenceStats(np.zeros(2), np.eye(2))
        ),
        r"--copy-quantile must be in \(0, 1\) \(got 1.0\)": dict(
            metrics=["copy"], real_test=real, options=MetricOptions(copy_quantile=1.0)
        ),
        "--metrics ct: needs at least 61 generated images \\(--fake has 60\\)": dict(metrics=["ct"], real_test=real),
    }
    for message, kwargs in cases.items():
        with pytest.raises(ConfigError, match=message):
            compute(real, fake, extractor=extractor, **kwargs)
