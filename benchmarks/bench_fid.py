"""Fréchet distance at d = 2048: ours (eigh of √Σ₁ Σ₂ √Σ₁, float64) against pytorch-fid's
`calculate_frechet_distance` (scipy `sqrtm`) on the same statistics, measured in the same run.

Statistics with real structure: CIFAR-10 pixels (../shared/data) through a fixed random projection and a ReLU,
two disjoint image sets (N > d, so Σ is full rank as in a 10k/50k FID). Target: ≥ 7× faster, same value to 1e-6.
Both of our paths are timed: eigh (the default, the issue's path) and Cholesky.

    python benchmarks/bench_fid.py [--quick]
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch  # noqa: F401  (before the reference loader's placeholder modules: torch's import inspects them)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from distgan.metrics.fid import frechet_distance  # noqa: E402
from distgan.peers import load_function  # noqa: E402


def _statistics(dim: int, rows: slice, seed: int) -> tuple[np.ndarray, np.ndarray]:
    with np.load(REPO.parent / "shared" / "data" / "cifar10_lossless_subset-train.npz") as data:
        pixels = data["x"][rows].reshape(-1, 3072).astype(np.float64) / 255
    projection = np.random.default_rng(seed).normal(size=(3072, dim)) / np.sqrt(3072)
    feats = np.maximum(pixels @ projection, 0)
    return feats.mean(0), np.cov(feats, rowvar=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 256 (seconds) instead of 2048")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    dim = 256 if args.quick else 2048
    reference = load_function(
        "pytorch_fid", "fid_score.py", "calculate_frechet_distance",
        ("torchvision", "torchvision.transforms", "pytorch_fid.inception"),
    )  # fmt: skip
    mu1, sigma1 = _statistics(dim, slice(0, 2200), seed=0)
    mu2, sigma2 = _statistics(dim, slice(2200, 4000), seed=0)
    sigma2 = sigma2 * 1.05
    ours_sec, eigh_sec, theirs_sec = [], [], []
    for _ in range(args.repeats):  # alternate, so machine load hits all alike
        start = time.perf_counter()
        ours = frechet_distance(mu1, sigma1, mu2, sigma2, method="cholesky")
        ours_sec.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours_eigh = frechet_distance(mu1, sigma1, mu2, sigma2, method="eigh")
        eigh_sec.append(time.perf_counter() - start)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's sqrtm deprecation notice for disp=
            theirs = reference(mu1, sigma1, mu2, sigma2)
        theirs_sec.append(time.perf_counter() - start)
    ours_t, eigh_t, theirs_t = min(ours_sec), min(eigh_sec), min(theirs_sec)
    print(f"d={dim}  pytorch-fid (scipy sqrtm) {theirs_t:.2f} s")
    print(f"  ours cholesky {ours_t:.2f} s  speed-up {theirs_t / ours_t:.1f}x")
    print(f"  ours eigh (default) {eigh_t:.2f} s  speed-up {theirs_t / eigh_t:.1f}x")
    for name, value in (("cholesky", ours), ("eigh", ours_eigh)):
        relative = abs(value - theirs) / theirs
        print(f"FID {name} {value:.9g}  pytorch-fid {theirs:.9g}  relative difference {relative:.2e}")


if __name__ == "__main__":
    main()
