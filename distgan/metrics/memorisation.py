"""Memorisation of the training set by a generator: copy rate, AuthPct and C_T, from features in any space.

Each compares the generated features with those of the real training split (and, for the copy rate and C_T, of the
real test split, a sample the generator never saw); the nearest-neighbour searches run in tiles (neighbours.py),
so no N×M matrix is made. Definitions and sources:

- copy rate: the share of generated images whose nearest training neighbour is closer than the q-th quantile of
  the test images' nearest-training distances. A held-out real set scores ≈ q by construction; exact copies 1.
- AuthPct (Alaa et al., ICML 2022, "How faithful is your synthetic data?"), as dgm-eval computes it
  (layer6ai-labs/dgm-eval, dgm_eval/metrics/authpct.py): the percentage of generated images farther from their
  nearest training image than that image is from its own nearest other training image.
- C_T (Meehan et al., AISTATS 2020, "A non-parametric test to detect data-copying in generative models"), as
  dgm-eval computes it (dgm_eval/metrics/ct.py, from casey-meehan/data-copying): features above 64 dimensions are
  projected on the training set's first 64 principal components; k-means (3 cells, 10 starts) partitions the
  training set; in each cell, a Mann-Whitney U test compares the generated and the test images' distances to their
  nearest training image of that cell, Z-scored under H0 with dgm-eval's continuity term; C_T is the mean of the
  Z-scores weighted by the cells' shares of test images, over cells holding more than 20 generated images.
  C_T ≪ 0: generated images are closer to the training set than new real images are (copying); ≈ 0: as close;
  ≫ 0: farther (underfitting). Where dgm-eval raises on a cell without test images (weight 0), it is left out.
"""

import numpy as np
import torch
from scipy.stats import rankdata

from distgan.errors import DataError
from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.neighbours import BLOCK_ROWS, nearest_neighbours

CT_PCA_DIMS = 64  # dgm-eval's preprcoess_ct
CT_NUM_CELLS = 3  # dgm-eval's KMeans(n_clusters=3, n_init=10)
CT_KMEANS_STARTS = 10
CT_MIN_FAKE_PER_CELL = 20  # dgm-eval's tau = 20 / m: a cell counts with more than 20 generated images
CT_SEED = 0  # k-means starts; dgm-eval leaves them unseeded
CT_MIN_FAKES = CT_NUM_CELLS * CT_MIN_FAKE_PER_CELL + 1  # then some cell holds more than 20


def copy_rate(train_ND, heldout_HD, fake_MD, *, quantile: float, device="cpu") -> dict:
    """The share of generated images nearer a training image than the `quantile` of held-out real images are."""
    heldout_dist, _ = nearest_neighbours(heldout_HD, train_ND, device=device)
    threshold = float(np.quantile(heldout_dist.numpy(), quantile))  # numpy: torch.quantile stops at 2^24 values
    fake_dist, _ = nearest_neighbours(fake_MD, train_ND, device=device)
    return {
        "copy_rate": float((fake_dist < threshold).double().mean()),
        "copy_threshold": threshold,
        "copy_quantile": quantile,
    }


def authenticity_pct(train_ND, fake_MD, *, device="cpu") -> dict:
    """AuthPct in percent: generated images farther from their nearest training image than it is from its own."""
    train_dist, _ = nearest_neighbours(train_ND, train_ND, exclude_self=True, device=device)
    fake_dist, fake_index = nearest_neighbours(fake_MD, train_ND, device=device)
    authentic = train_dist[fake_index] < fake_dist
    return {"authpct": float(100 * authentic.double().mean())}


def principal_projection(train_ND, *others, dims: int = CT_PCA_DIMS, block: int = BLOCK_ROWS) -> list[torch.Tensor]:
    """Each set centred on the training mean and projected on the training set's first `dims` principal axes
    (sklearn's PCA up to each axis's sign, so distances are the same), from float64 Σx and Σxxᵀ in blocks: O(D²)
    memory. Sets of at most `dims` dimensions come back unchanged, as float64."""
    sets = [torch.as_tensor(x) for x in (train_ND, *others)]
    if sets[0].shape[1] <= dims:
        return [x.double() for x in sets]
    stats = FeatureStats.empty(sets[0].shape[1])
    for start in range(0, len(sets[0]), block):
        stats.update(sets[0][start : start + block])  # float64 per block: no float64 copy of a whole set
    mean, cov = (torch.from_numpy(a) for a in stats.mean_and_covariance())
    _, axes_DD = torch.linalg.eigh(cov)  # ascending eigenvalues
    axes = axes_DD[:, -dims:].flip(1)
    return [torch.cat([(x[s : s + block].double() - mean) @ axes for s in range(0, len(x), block)]) for x in sets]


def kmeans_cells(
    train_ND: torch.Tensor, *others: torch.Tensor, num_cells: int = CT_NUM_CELLS, seed: int = CT_SEED
) -> list[np.ndarray]:
    """The k-means cell of every row of every set, the cells fitted on the training set."""
    from sklearn.cluster import KMeans  # slow to import; only C_T needs it

    kmeans = KMeans(n_clusters=num_cells, n_init=CT_KMEANS_STARTS, random_state=seed).fit(train_ND.numpy())
    return [kmeans.labels_.astype(np.int64)] + [kmeans.predict(x.numpy()).astype(np.int64) for x in others]


def mann_whitney_z(fake_dist_M: np.ndarray, heldout_dist_N: np.ndarray) -> float:
    """dgm-eval's Zu: U of the generated distances against the held-out ones (ties as half), minus its H0 mean with
    a 0.5 continuity term, over its H0 standard deviation (no tie correction)."""
    m, n = len(fake_dist_M), len(heldout_dist_N)
    ranks = rankdata(np.concatenate([fake_dist_M, heldout_dist_N]))
    u = ranks[:m].sum() - m * (m + 1) / 2
    return float((u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12))


def data_copying_ct(
    train_ND, heldout_HD, fake_MD, *, num_cells: int = CT_NUM_CELLS, seed: int = CT_SEED, device="cpu"
) -> dict:
    """C_T over a k-means partition of the (projected) training features, the test split as held-out sample."""
    if len(fake_MD) <= num_cells * CT_MIN_FAKE_PER_CELL:
        raise DataError(
            f"ct: needs more than {num_cells * CT_MIN_FAKE_PER_CELL} generated images, so that some of "
            f"its {num_cells} cells holds more than {CT_MIN_FAKE_PER_CELL} (got {len(fake_MD)})"
        )
    train, heldout, fake = principal_projection(train_ND, heldout_HD, fake_MD)
    train_cells, heldout_cells, fake_cells = kmeans_cells(train, heldout, fake, num_cells=num_cells, seed=seed)
    heldout_dist, _ = nearest_neighbours(
        heldout, train, query_cells_Q=heldout_cells, ref_cells_R=train_cells, device=device
    )
    fake_dist, _ = nearest_neighbours(fake, train, query_cells_Q=fake_cells, ref_cells_R=train_cells, device=device)
    z_scores, weights = [], []
    for cell in range(num_cells):
        in_fake, in_heldout = fake_cells == cell, heldout_cells == cell
        if in_fake.sum() <= CT_MIN_FAKE_PER_CELL or not in_heldout.any():
            continue
        z_scores.append(mann_whitney_z(fake_dist.numpy()[in_fake], heldout_dist.numpy()[in_heldout]))
        weights.append(in_heldout.mean())
    if not z_scores:
        raise DataError(
            f"ct: no k-means cell holds both test images and more than {CT_MIN_FAKE_PER_CELL} generated "
            f"images ({len(heldout_HD)} test, {len(fake_MD)} generated)"
        )
    ct = float(np.dot(weights, z_scores) / np.sum(weights))
    return {"ct": ct, "ct_num_cells": num_cells, "ct_cells_used": len(z_scores)}
