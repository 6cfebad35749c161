"""Per-class FID/KID class by class, in memory independent of the class count (issue 23, item 2): the same numbers
as the direct D×D computation, no K×D×D statistics anywhere, a sweep-like reference read back class by class."""

import dataclasses
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from distgan.data.sources import load_split
from distgan.errors import ConfigError
from distgan.metrics.engine import ImageSet, MetricOptions, RealFeatures, compute, extract_real, kid_of
from distgan.metrics.extraction import Extraction, ImageSource, extract
from distgan.metrics.extractors import wrap_model
from distgan.metrics.fid import frechet_distance, frechet_distance_of_features
from distgan.metrics.kid import TORCH_FIDELITY_RNG_SEED, kernel_inception_distance, mmd2_unbiased
from distgan.metrics.per_class import class_rows, per_class_scores
from distgan.metrics.reference_stats import ReferenceStats, load_stats, save_stats
from distgan.models.classifiers import small_cnn

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One BLAS and one torch thread: on this shared 2-core machine two threads wait on each other whenever other
    jobs hold a core (a 50×2048 product took 110 ms with two threads under load, 1.25 ms with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        yield
    torch.set_num_threads(threads)


def _direct_fid(x: np.ndarray, y: np.ndarray) -> float:
    return frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


def _class_features(rng, classes: int, counts: list[int], dim: int, scale: float = 1.0):
    """Class-structured float32 features (class means + noise) with their labels, classes interleaved."""
    means = rng.standard_normal((classes, dim))
    labels = rng.permutation(np.repeat(np.arange(classes), counts))
    feats = means[labels] * scale + 0.7 * rng.standard_normal((len(labels), dim))
    return torch.from_numpy(feats.astype(np.float32)), labels


@pytest.mark.parametrize(("n1", "n2", "dim"), [(20, 30, 64), (5, 400, 48), (150, 120, 16)])
def test_per_class_fid_equals_the_direct_dxd_computation(n1, n2, dim):
    """n < D (cross-product path, n₁·n₂ ≤ D²) and n > D (D×D path) alike."""
    rng = np.random.default_rng(n1)
    x = rng.standard_normal((n1, dim)) @ rng.standard_normal((dim, dim)) * 0.3
    y = rng.standard_normal((n2, dim)) * 1.2 + 0.4
    assert frechet_distance_of_features(x, y) == pytest.approx(_direct_fid(x, y), rel=1e-6)
    assert frechet_distance_of_features(x, x) == pytest.approx(0.0, abs=1e-8 * _direct_fid(x, y))


def _reference_kid(x: np.ndarray, y: np.ndarray, num_subsets: int, subset_size: int) -> tuple[float, float]:
    """KID before this change: the same draws, three fresh kernels per subset."""
    rng = np.random.RandomState(TORCH_FIDELITY_RNG_SEED)
    mmds = [
        mmd2_unbiased(x[rng.choice(len(x), subset_size, replace=False)], y[rng.choice(len(y), subset_size, False)])
        for _ in range(num_subsets)
    ]
    return float(np.mean(mmds)), float(np.std(mmds))


def test_per_class_scores_equal_the_direct_computation_class_by_class():
    rng = np.random.default_rng(0)
    counts_real, counts_fake = [12, 40, 90, 7, 3, 25], [15, 35, 80, 9, 1, 25]
    real_ND, real_labels = _class_features(rng, 6, counts_real, 32)
    fake_ND, fake_labels = _class_features(rng, 6, counts_fake, 32, scale=0.9)
    real = RealFeatures(ReferenceStats(np.zeros(32), np.eye(32)), real_ND, real_labels)
    fake = Extraction(None, None, fake_ND, fake_labels)
    opts = MetricOptions(kid_subsets=20, kid_subset_size=50)
    scores = per_class_scores(fake, real, is_splits=10, class_names=None, kid=lambda r, f: kid_of(r, f, opts))
    real_rows, fake_rows = class_rows(real_labels), class_rows(fake_labels)
    assert [scores[str(k)]["num_samples"] for k in range(6)] == counts_fake
    assert [scores[str(k)]["num_real"] for k in range(6)] == counts_real
    for label in (0, 1, 2, 3, 5):  # class 2 has more images than D (the D×D path); the others fewer
        x, y = real_ND[real_rows[label]].double().numpy(), fake_ND[fake_rows[label]].double().numpy()
        assert scores[str(label)]["fid"] == pytest.approx(_direct_fid(x, y), rel=1e-6)
        size = min(50, len(x), len(y))
        mean, std = _reference_kid(x, y, 20, size)
        assert scores[str(label)]["kid_mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert scores[str(label)]["kid_std"] == pytest.approx(std, rel=1e-7, abs=1e-12)
    assert "fid" not in scores["4"] and "kid_mean" not in scores["4"]  # one generated image: neither is defined


def test_kid_of_whole_kernels_equals_fresh_kernels_per_subset():
    """Small sets take the kernels of all pairs once; the draws and values are those of the subset loop."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((70, 24)), rng.standard_normal((60, 24)) * 1.1
    mean, std = kernel_inception_distance(x, y, num_subsets=30, subset_size=40)
    ref_mean, ref_std = _reference_kid(x, y, 30, 40)
    assert mean == pytest.approx(ref_mean, rel=1e-9) and std == pytest.approx(ref_std, rel=1e-7)


def _arrays_in(obj, seen=None) -> list[np.ndarray | torch.Tensor]:
    """Every array or tensor reachable from `obj` through dataclass fields, dicts, lists and tuples."""
    if isinstance(obj, np.ndarray | torch.Tensor):
        return [obj]
    if dataclasses.is_dataclass(obj):
        return [a for f in dataclasses.fields(obj) for a in _arrays_in(getattr(obj, f.name))]
    if isinstance(obj, dict):
        return [a for value in obj.values() for a in _arrays_in(value)]
    if isinstance(obj, list | tuple):
        return [a for value in obj for a in _arrays_in(value)]
    return []


@pytest.fixture(scope="module")
def digits():
    torch.manual_seed(0)
    train, test = load_split("digits", "train"), load_split("digits", "test")
    extractor = wrap_model("domain", small_cnn(1, 10))
    real = ImageSet(ImageSource.from_array(train.images_NHWC[:500], train.labels_N[:500]), "train-digest")
    return extractor, real, ImageSet(ImageSource.from_array(test.images_NHWC[:300], test.labels_N[:300]))


def test_per_class_extraction_holds_one_dxd_matrix_whatever_the_class_count(digits):
    extractor, real, _ = digits
    dim = extractor.num_features
    x = extract(extractor, real.source, keep_logits=False, per_class=True)
    square = [a for a in _arrays_in(x) if a.ndim >= 2 and a.shape[-2:] == (dim, dim)]
    assert len(square) == 1 and square[0] is x.stats.sum_outer_DD  # the overall Σxxᵀ alone, not one per class
    assert x.feats_ND.shape == (real.source.num_images, dim)  # the features per-class scores are computed from
    ref = extract_real(real, extractor, keep_features=True, per_class=True, options=MetricOptions())
    assert sum(a.ndim >= 2 and a.shape[-2:] == (dim, dim) for a in _arrays_in(ref.stats)) == 1  # Σ; √Σ not yet


def _peak_traced_bytes(classes: int) -> int:
    rng = np.random.default_rng(classes)
    real_ND, real_labels = _class_features(rng, classes, [140] * classes, 96)
    fake_ND, fake_labels = _class_features(rng, classes, [140] * classes, 96, scale=0.9)
    real, fake = RealFeatures(None, real_ND, real_labels), Extraction(None, None, fake_ND, fake_labels)
    opts = MetricOptions(kid_subsets=4, kid_subset_size=100)
    tracemalloc.start()  # numpy's allocations (the per-class matrices) are traced; the tensors above are not
    try:
        per_class_scores(fake, real, is_splits=10, class_names=None, kid=lambda r, f: kid_of(r, f, opts))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_per_class_scoring_memory_does_not_grow_with_the_class_count():
    """140 images a class on each side at D = 96 (n₁·n₂ > D²: the D×D path): 8 times the classes, the same peak."""
    few, many = _peak_traced_bytes(4), _peak_traced_bytes(32)
    assert many < 1.5 * few, (few, many)
    assert many < 32 * 96 * 96 * 8  # below the K D×D float64 matrices of the old statistics


def test_sweep_like_reference_read_back_class_by_class_gives_the_same_numbers(tmp_path, digits):
    """stats.npz, features.npy, labels.npy as the sweep's reference job writes them; features memory-mapped on
    load (only a class's rows are read); no per-class arrays in the statistics file."""
    extractor, real, test = digits
    opts = MetricOptions(kid_subsets=5, kid_subset_size=100)
    in_memory = extract_real(real, extractor, keep_features=True, per_class=True, options=opts)
    save_stats(tmp_path / "stats.npz", in_memory.stats)
    np.save(tmp_path / "features.npy", in_memory.feats_ND.numpy())
    np.save(tmp_path / "labels.npy", in_memory.labels_N)
    with np.load(tmp_path / "stats.npz") as data:
        assert not [key for key in data.files if key.startswith("class_")]
    mapped = np.load(tmp_path / "features.npy", mmap_mode="c")
    read_back = RealFeatures(
        load_stats(tmp_path / "stats.npz"), torch.from_numpy(mapped), np.load(tmp_path / "labels.npy")
    )
    metrics = ["fid", "kid"]
    before = compute(in_memory, test, metrics=metrics, extractor=extractor, per_class=True, options=opts)
    after = compute(read_back, test, metrics=metrics, extractor=extractor, per_class=True, options=opts)
    assert after == before and len(after["per_class"]) == 10  # the same arithmetic on the same values
    assert all(entry["fid"] > 0 for entry in after["per_class"].values())


def test_older_stats_files_give_the_overall_fid_and_refuse_per_class(tmp_path, digits):
    """A distgan file with class_mu/class_sigma (K×D×D) still serves the overall FID, never loading those arrays;
    per-class scores from a statistics file are refused before any extraction."""
    extractor, real, test = digits
    stats = extract(extractor, real.source, keep_logits=False).stats
    ref = ReferenceStats.from_stats(stats, identity={"k": 1})
    save_stats(tmp_path / "new.npz", ref)
    dim = len(ref.mu_D)
    with np.load(tmp_path / "new.npz") as data:
        arrays = {key: data[key] for key in data.files}
    class_arrays = {
        "class_labels": np.arange(10),
        "class_mu": np.zeros((10, dim)),
        "class_sigma": np.zeros((10, dim, dim)),
    }
    np.savez(tmp_path / "older.npz", **arrays, **class_arrays)
    older = load_stats(tmp_path / "older.npz")
    assert not [a for a in _arrays_in(older) if a.ndim == 3]
    expected = compute(ref, test, metrics=["fid"], extractor=extractor)["fid"]
    assert compute(older, test, metrics=["fid"], extractor=extractor)["fid"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ConfigError, match="--per-class needs the real images"):
        compute(older, test, metrics=["fid"], extractor=extractor, per_class=True)


def test_benchmark_quick_mode_runs_and_matches_the_direct_path():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_per_class_memory.py"), "--quick",
                           "--check-classes", "2"], capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "peak RSS" in done.stdout and "PASS" in done.stdout and "K·D²·8" in done.stdout
