"""The truncation trick: latents from a truncated normal, and class-conditional sampling with them.

Convention (Ravuri & Vinyals 2019, footnote on truncation; BigGAN's "truncation trick"): for
truncation τ, each entry of z ~ N(0, 1) outside [−f·τ, f·τ] is resampled, with the factor f =
`SampleConfig.truncation_factor` (2 in the paper's footnote). Resampling until inside gives exactly
the normal truncated to that interval, which torch's inverse-CDF sampler draws directly.
"""

import numpy as np
import torch
from torch import nn

from distgan.data.transforms import to_uint8_images


def truncated_latents(
    num: int, dim: int, *, truncation: float, factor: float, generator: torch.Generator
) -> torch.Tensor:
    """z of shape (num, dim), each entry N(0, 1) conditioned on |z| ≤ factor · truncation."""
    if truncation <= 0 or factor <= 0:
        raise ValueError(f"truncation and its factor must be > 0 (got τ={truncation}, factor={factor})")
    bound = factor * truncation
    z = torch.empty(num, dim, dtype=torch.float64)
    torch.nn.init.trunc_normal_(z, mean=0.0, std=1.0, a=-bound, b=bound, generator=generator)
    # Inverse-CDF rounding can land a hair outside in float64; the interval is closed by definition.
    return z.clamp_(-bound, bound).float()


@torch.no_grad()
def sample_images(
    generator_net: nn.Module,
    labels_N: np.ndarray,
    *,
    truncation: float,
    factor: float,
    seed: int,
    batch_size: int = 500,
) -> np.ndarray:
    """One uint8 NHWC image per requested label, from latents truncated at τ; deterministic in seed."""
    device = next(generator_net.parameters()).device
    generator_net.eval()
    rng = torch.Generator().manual_seed(seed)
    z = truncated_latents(len(labels_N), generator_net.latent_dim, truncation=truncation, factor=factor, generator=rng)
    labels = torch.as_tensor(labels_N, dtype=torch.int64)
    batches = [
        to_uint8_images(generator_net(z[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)))
        for i in range(0, len(labels_N), batch_size)
    ]
    return np.concatenate(batches)
