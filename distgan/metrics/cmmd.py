"""CMMD (Jayasumana et al. 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image Generation"): the MMD²
between CLIP image embeddings (the `clip` extractor: ViT-L/14-336, L2-normalised) with a Gaussian RBF kernel.

As the authors' reference code (google-research/cmmd, `distance.py`): k(x, y) = exp(−‖x − y‖² / (2σ²)), σ = 10,
the minimum-variance (biased) estimator of Gretton et al. 2012, Eq. 5 — the means of the whole kernel matrices,
diagonals included — times 1000, with ‖x − y‖² = ‖x‖² + ‖y‖² − 2 x·y. Here in float64 and in row blocks, so that
memory stays O(block · M) where the reference holds whole N × M matrices. The sets may differ in size.
Compared with an independent transcription of their formula: tests/test_feature_spaces.py.
"""

import numpy as np
import torch

SIGMA = 10.0  # the RBF bandwidth the paper fixes
SCALE = 1000.0  # the paper's scaling "for readability"
BLOCK_ROWS = 2048  # 2048 × 50,000 float64: 0.8 GB at most per block


def _as_float64(feats_ND: torch.Tensor | np.ndarray) -> np.ndarray:
    return np.asarray(torch.as_tensor(feats_ND).detach().cpu().double())


def mean_rbf_kernel(x_ND: np.ndarray, y_MD: np.ndarray, *, block_rows: int = BLOCK_ROWS) -> float:
    """Mean of exp(−γ ‖x_i − y_j‖²) over all N × M pairs, γ = 1 / (2σ²)."""
    gamma = 1.0 / (2.0 * SIGMA**2)
    y_sqnorms_M = np.einsum("md,md->m", y_MD, y_MD)
    total = 0.0
    for start in range(0, len(x_ND), block_rows):
        x_block = x_ND[start : start + block_rows]
        x_sqnorms = np.einsum("nd,nd->n", x_block, x_block)
        sqdist = -2.0 * (x_block @ y_MD.T) + x_sqnorms[:, None] + y_sqnorms_M[None, :]
        total += float(np.exp(-gamma * sqdist).sum())
    return total / (len(x_ND) * len(y_MD))


def cmmd(real_feats_ND: torch.Tensor | np.ndarray, fake_feats_ND: torch.Tensor | np.ndarray, *,
         block_rows: int = BLOCK_ROWS) -> float:  # fmt: skip
    """CMMD between two sets of (CLIP) embeddings: 1000 · (mean k(x, x') + mean k(y, y') − 2 mean k(x, y))."""
    x, y = _as_float64(real_feats_ND), _as_float64(fake_feats_ND)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) == 0:
        raise ValueError(f"CMMD needs two non-empty (N, D) feature sets of one width (got {x.shape} and {y.shape})")
    k_xx = mean_rbf_kernel(x, x, block_rows=block_rows)
    k_yy = mean_rbf_kernel(y, y, block_rows=block_rows)
    k_xy = mean_rbf_kernel(x, y, block_rows=block_rows)
    return SCALE * (k_xx + k_yy - 2.0 * k_xy)
