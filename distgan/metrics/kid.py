"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
k(x, y) = (x·y / D + 1)³, averaged over random subsets (mean ± population std).

Same estimator, kernel and subset draws as torch-fidelity's `kid_features_to_metric` (numpy RandomState seeded
2020, `choice(n, subset_size, replace=False)` for set 1 then set 2, per subset); computed in float64. Equal to it
on the same features (tests/test_metrics_kid_prdc.py, rel ≤ 1e-9 on float64 input).

Small sets (one class's images: per-class KID at 1,000 classes) take the kernel over all pairs once and each
subset's sums from it, instead of 3 kernels per subset: the same draws and formula, the entries computed once.
"""

import numpy as np
import torch

TORCH_FIDELITY_RNG_SEED = 2020


def _polynomial_kernel(x_ND: np.ndarray, y_MD: np.ndarray) -> np.ndarray:
    return (x_ND @ y_MD.T / x_ND.shape[1] + 1.0) ** 3


def mmd2_unbiased(x_ND: np.ndarray, y_ND: np.ndarray) -> float:
    """Unbiased MMD² of two equally sized samples: diagonals of K_XX and K_YY excluded, K_XY kept whole."""
    return _mmd2_of_kernels(
        _polynomial_kernel(x_ND, x_ND), _polynomial_kernel(y_ND, y_ND), _polynomial_kernel(x_ND, y_ND)
    )


def _mmd2_of_kernels(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    feats1_ND: torch.Tensor | np.ndarray,
    feats2_ND: torch.Tensor | np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = TORCH_FIDELITY_RNG_SEED,
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD² over `num_subsets` random subsets of `subset_size` from each set."""
    x = np.asarray(torch.as_tensor(feats1_ND).double().cpu())
    y = np.asarray(torch.as_tensor(feats2_ND).double().cpu())
    if min(len(x), len(y)) < subset_size:
        raise ValueError(f"KID subset size {subset_size} exceeds a feature set ({len(x)} and {len(y)} samples); "
                         "lower --kid-subset-size")  # fmt: skip
    if subset_size < 2:
        raise ValueError(f"KID subset size must be ≥ 2 (got {subset_size})")
    rng = np.random.RandomState(seed)
    # The kernels of all pairs once where they have no more entries than min(num_subsets, 4) subsets' kernels:
    # never more work than drawing the subsets' kernels, never more memory than 4 of them (12 m² entries).
    whole = len(x) ** 2 + len(y) ** 2 + len(x) * len(y) <= 3 * subset_size**2 * min(num_subsets, 4)
    if whole:
        k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    mmds = np.zeros(num_subsets)
    for i in range(num_subsets):
        rows1 = rng.choice(len(x), subset_size, replace=False)
        rows2 = rng.choice(len(y), subset_size, replace=False)
        if whole:
            mmds[i] = _mmd2_of_kernels(
                k_xx[np.ix_(rows1, rows1)], k_yy[np.ix_(rows2, rows2)], k_xy[np.ix_(rows1, rows2)]
            )
        else:
            mmds[i] = mmd2_unbiased(x[rows1], y[rows2])
    return float(mmds.mean()), float(mmds.std())
