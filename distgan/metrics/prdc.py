"""Precision, recall, density and coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020) from k-NN balls.

The reference is the `prdc` package's `compute_prdc` (NAVER, v0.2): real ball i has the radius of its k-th
nearest real neighbour (itself excluded); precision = share of fakes inside some real ball, recall = share of
reals inside some fake ball, density = mean number of real balls holding a fake / k, coverage = share of real
balls holding a fake. prdc builds full N×M distance matrices; here they are made in row blocks, in float64, so
memory is O(block · M). Equal to prdc on the same features (tests/test_metrics_kid_prdc.py).
"""

import torch

BLOCK_ROWS = 4096


def _distances(x_BD: torch.Tensor, y_MD: torch.Tensor) -> torch.Tensor:
    # ‖x‖² − 2x·y + ‖y‖², clipped at 0: the formula of sklearn's euclidean_distances, which prdc calls.
    squared = (x_BD * x_BD).sum(1, keepdim=True) - 2 * x_BD @ y_MD.T + (y_MD * y_MD).sum(1)[None]
    return squared.clamp_(min=0).sqrt_()


def _kth_neighbour_radii(feats_ND: torch.Tensor, k: int) -> torch.Tensor:
    """Distance to the k-th nearest other point (the (k+1)-th smallest, counting the point itself)."""
    radii = []
    for start in range(0, len(feats_ND), BLOCK_ROWS):
        block = _distances(feats_ND[start : start + BLOCK_ROWS], feats_ND)
        radii.append(block.topk(k + 1, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def precision_recall_density_coverage(real_ND, fake_MD, *, k: int = 5) -> dict:
    """The four k-NN scores of fake features against real ones, as plain floats."""
    real = torch.as_tensor(real_ND).double()
    fake = torch.as_tensor(fake_MD).double()
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and fake samples "
                         f"(got {len(real)} and {len(fake)})")  # fmt: skip
    real_radii, fake_radii = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
    fake_in_real_balls = torch.zeros(len(fake), dtype=torch.int64)
    real_in_fake_ball = torch.zeros(len(real), dtype=torch.bool)
    real_ball_covered = torch.zeros(len(real), dtype=torch.bool)
    for start in range(0, len(real), BLOCK_ROWS):
        d = _distances(real[start : start + BLOCK_ROWS], fake)  # (block, M)
        inside_real = d < real_radii[start : start + BLOCK_ROWS, None]
        fake_in_real_balls += inside_real.sum(0)
        real_in_fake_ball[start : start + BLOCK_ROWS] = (d < fake_radii[None]).any(1)
        real_ball_covered[start : start + BLOCK_ROWS] = d.min(1).values < real_radii[start : start + BLOCK_ROWS]
    return {
        "precision": float((fake_in_real_balls > 0).double().mean()),
        "recall": float(real_in_fake_ball.double().mean()),
        "density": float(fake_in_real_balls.double().mean() / k),
        "coverage": float(real_ball_covered.double().mean()),
    }
