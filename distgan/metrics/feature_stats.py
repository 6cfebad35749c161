"""Streaming sufficient statistics of features: count, Σx and Σxxᵀ in float64, reduced once across ranks (never
raw features per batch).

Memory is O(D²) whatever the number of images; ranks sum their statistics with one all-reduce.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class FeatureStats:
    """Running count, sum and sum of outer products of D-dimensional features."""

    count: int
    sum_D: torch.Tensor  # float64
    sum_outer_DD: torch.Tensor  # float64

    @classmethod
    def empty(cls, dim: int, device: torch.device | str = "cpu") -> "FeatureStats":
        zeros = torch.zeros((dim,), dtype=torch.float64, device=device)
        return cls(0, zeros, torch.zeros((dim, dim), dtype=torch.float64, device=device))

    def update(self, feats_ND: torch.Tensor) -> None:
        """Add a batch of features; one float64 GEMM, accumulated in place (no D×D temporary)."""
        feats = feats_ND.detach().to(torch.float64)
        self.count += feats.shape[0]
        self.sum_D += feats.sum(dim=0)
        self.sum_outer_DD.addmm_(feats.T, feats)

    def all_reduce(self) -> None:
        """Sum the statistics of every rank in place (no-op without a process group)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        count = torch.tensor([self.count], dtype=torch.float64, device=self.sum_D.device)
        for tensor in (count, self.sum_D, self.sum_outer_DD):
            dist.all_reduce(tensor)
        self.count = int(count.item())

    def mean_and_covariance(self) -> tuple[np.ndarray, np.ndarray]:
        """μ and the unbiased covariance Σ (divisor N−1, as numpy.cov in pytorch-fid)."""
        if self.count < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance (got {self.count})")
        mean = self.sum_D / self.count
        cov = (self.sum_outer_DD - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean.cpu().numpy(), cov.cpu().numpy()
