"""Peak memory and wall time of per-class FID and KID at ImageNet's shape: 1,000 classes, D = 2048, 50,000 images'
features on each side (the sweep's `--metrics.num-images 50000` of the ImageNet recipe), computed class by class
(metrics/per_class.py), against the old path's projected memory: one float64 Σxxᵀ per class, K·D²·8 bytes per side
(33.5 GB here), kept by the extraction for the generated side and by the reference statistics for the real side.

Features are random but class-structured and seeded (class means + noise; the generated side's means shrunk and
shifted). The real side is written as the sweep writes it (features.npy, labels.npy) and memory-mapped as the
scoring job reads it; the generated side is in memory, as the extraction leaves it. Each measurement runs in a
fresh process, whose peak resident set (getrusage's ru_maxrss, file-backed pages of the mapped real side included)
is reported: `load` reads the inputs only (the floor: interpreter, torch, the generated features), `per-class`
then scores every class. The values of the first `--check-classes` classes are checked against a direct
computation in a third process: each class's D×D covariances (numpy.cov) and `fid.frechet_distance`; KID by the
subset-by-subset reference loop (fresh kernels per subset). Target: peak RSS ≤ 2 GB; values equal to 1e-6.

BLAS threads: `--threads` (default 1) in every measured process. A class's matrices are small (50×2048), and on a
shared machine multi-threaded BLAS spin-waits: here one 50×2048 product took 110 ms with 2 threads under load,
1.25 ms with one.

    python benchmarks/bench_per_class_memory.py [--quick] [--threads N]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET_PEAK_GB = 2.0
TOLERANCE = 1e-6


def _make(directory: Path, classes: int, dim: int, images: int, seed: int) -> None:
    """real_features.npy / fake_features.npy (float32) and their labels, `images` per side, balanced classes."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim), dtype=np.float32)
    for side, (scale, shift, noise) in {"real": (1.0, 0.0, 0.8), "fake": (0.9, 0.05, 1.0)}.items():
        labels = rng.permutation(np.arange(images) % classes)
        feats = np.lib.format.open_memmap(directory / f"{side}_features.npy", "w+", np.float32, (images, dim))
        for start in range(0, images, 5000):  # in blocks: the maker's memory is not what is measured
            block = labels[start : start + 5000]
            feats[start : start + len(block)] = (
                means[block] * scale + shift + noise * rng.standard_normal((len(block), dim), dtype=np.float32)
            )
        feats.flush()
        np.save(directory / f"{side}_labels.npy", labels)


def _inputs(directory: Path):
    """(generated Extraction, real RealFeatures) as a trial's scoring job holds them. Per-class scores read only
    the features and labels, so no overall statistics are made (stats=None)."""
    import torch

    sys.path.insert(0, str(REPO))
    from distgan.metrics.engine import RealFeatures
    from distgan.metrics.extraction import Extraction

    real_ND = torch.from_numpy(np.load(directory / "real_features.npy", mmap_mode="c"))  # the sweep's reference
    fake_ND = torch.from_numpy(np.load(directory / "fake_features.npy"))
    fake = Extraction(None, None, fake_ND, np.load(directory / "fake_labels.npy"))
    return fake, RealFeatures(None, real_ND, np.load(directory / "real_labels.npy"))


def _reference_kid(x: np.ndarray, y: np.ndarray, num_subsets: int, subset_size: int) -> float:
    """KID as before the whole-kernel path: the same draws (torch-fidelity's), fresh kernels per subset."""
    from distgan.metrics.kid import TORCH_FIDELITY_RNG_SEED, mmd2_unbiased

    rng = np.random.RandomState(TORCH_FIDELITY_RNG_SEED)
    mmds = [
        mmd2_unbiased(x[rng.choice(len(x), subset_size, replace=False)], y[rng.choice(len(y), subset_size, False)])
        for _ in range(num_subsets)
    ]
    return float(np.mean(mmds))


def _worker(mode: str, directory: Path, check_classes: int) -> dict:
    fake, real = _inputs(directory)
    from distgan.metrics.engine import MetricOptions, kid_of
    from distgan.metrics.fid import frechet_distance
    from distgan.metrics.per_class import class_rows, per_class_scores

    opts = MetricOptions()
    out: dict = {"mode": mode}
    if mode == "per-class":
        start = time.perf_counter()
        scores = per_class_scores(fake, real, is_splits=opts.is_splits, class_names=None,
                                  kid=lambda r, f: kid_of(r, f, opts))  # fmt: skip
        out["wall_s"] = time.perf_counter() - start
        out["scores"] = {name: [entry["fid"], entry["kid_mean"]] for name, entry in scores.items()}
    elif mode == "direct":
        real_rows, fake_rows = class_rows(real.labels_N), class_rows(fake.labels_N)
        out["scores"] = {}
        for label in sorted(fake_rows)[:check_classes]:
            x = real.feats_ND[real_rows[label]].double().numpy()
            y = fake.feats_ND[fake_rows[label]].double().numpy()
            fid = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
            size = min(opts.kid_subset_size, len(x), len(y))
            out["scores"][str(label)] = [fid, _reference_kid(x, y, opts.kid_subsets, size)]
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss: KiB on Linux
    return out


def _run(mode: str, directory: Path, check_classes: int, threads: int) -> dict:
    env = os.environ | {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, __file__, "--worker", mode, str(directory), str(check_classes)],
                          capture_output=True, text=True, check=True, env=env)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 classes, D = 256, 2,500 images a side")
    parser.add_argument("--check-classes", type=int, default=5, help="classes checked against the direct D×D path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads of each measured process")
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "DIR", "CHECK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, directory, check = args.worker
        print(json.dumps(_worker(mode, Path(directory), int(check))))
        return 0
    classes, dim, images = (50, 256, 2_500) if args.quick else (1_000, 2_048, 50_000)
    with tempfile.TemporaryDirectory(prefix="bench_per_class_") as tmp:
        _make(Path(tmp), classes, dim, images, args.seed)
        runs = {
            mode: _run(mode, Path(tmp), args.check_classes, args.threads) for mode in ("load", "per-class", "direct")
        }
    old_gb = classes * dim * dim * 8 / 1e9
    ours, floor = runs["per-class"]["peak_rss_gb"], runs["load"]["peak_rss_gb"]
    print(
        f"{classes} classes, D = {dim}, {images} images a side ({images // classes} a class), {args.threads} thread(s)"
    )
    print(f"old path, projected: K·D²·8 = {old_gb:.2f} GB per side, {2 * old_gb:.2f} GB for both (reference)")
    print(f"peak RSS: inputs loaded {floor:.2f} GB; per-class FID+KID of all classes {ours:.2f} GB "
          f"(+{ours - floor:.2f} GB); ratio to the old path's per-side projection {ours / old_gb:.3f}")  # fmt: skip
    print(f"wall time of per-class FID+KID, all {classes} classes: {runs['per-class']['wall_s']:.1f} s")
    worst = 0.0
    for label, (fid, kid) in runs["direct"]["scores"].items():
        new_fid, new_kid = runs["per-class"]["scores"][label]
        worst = max(worst, abs(new_fid - fid) / abs(fid), abs(new_kid - kid) / abs(kid))
        print(f"class {label}: FID {new_fid:.6f} (direct D×D {fid:.6f}), KID {new_kid:.6e} (direct {kid:.6e})")
    ok = worst <= TOLERANCE and ours <= TARGET_PEAK_GB
    print(f"largest relative difference {worst:.1e} (tolerance {TOLERANCE:g}); peak ≤ {TARGET_PEAK_GB} GB: "
          f"{ours <= TARGET_PEAK_GB}; {'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
