"""The truncation trick: latents from a truncated normal, and class-conditional sampling with them.

Two conventions name the same trick differently, and give different latents at the same τ
(`--sample.truncation-convention`; the factor f is `--sample.truncation-factor`, 2 in both sources):

- "resample", Ravuri & Vinyals (2019), footnote on truncation: each entry of z ~ N(0, 1) outside
  [−f·τ, f·τ] is resampled. Resampling until inside gives exactly the normal truncated to that interval,
  which torch's inverse-CDF sampler draws directly. At τ = 0.5 the std of an entry is 0.54.
- "scale", BigGAN's released code (`pytorch_pretrained_biggan.utils.truncated_noise_sample`:
  `truncation * truncnorm.rvs(-2, 2)`, as in the BigGAN TF-Hub demo): a normal truncated to [−f, f], then
  multiplied by τ. At τ = 0.5 the std is 0.5 × 0.88 = 0.44. Same distribution as that code, not the same
  numbers: it draws from numpy's global state, this from a torch.Generator.
"""

import numpy as np
import torch
from torch import nn

from distgan.data.transforms import to_uint8_images

TRUNCATION_CONVENTIONS = ("resample", "scale")


def truncated_latents(
    num: int,
    dim: int,
    *,
    truncation: float,
    factor: float,
    convention: str = "resample",
    generator: torch.Generator,
) -> torch.Tensor:
    """z of shape (num, dim) under `convention` (module docstring): "resample" draws N(0, 1) conditioned on
    |z| ≤ factor·truncation; "scale" draws N(0, 1) conditioned on |z| ≤ factor, times truncation."""
    if truncation <= 0 or factor <= 0:
        raise ValueError(f"truncation and its factor must be > 0 (got τ={truncation}, factor={factor})")
    if convention not in TRUNCATION_CONVENTIONS:
        raise ValueError(f"truncation convention must be one of {TRUNCATION_CONVENTIONS} (got {convention!r})")
    bound = factor * truncation if convention == "resample" else factor
    z = torch.empty(num, dim, dtype=torch.float64)
    torch.nn.init.trunc_normal_(z, mean=0.0, std=1.0, a=-bound, b=bound, generator=generator)
    # Inverse-CDF rounding can land a hair outside in float64; the interval is closed by definition.
    z = z.clamp_(-bound, bound)
    return (z if convention == "resample" else z * truncation).float()


@torch.no_grad()
def images_from_latents(
    generator_net: nn.Module, z_ND: torch.Tensor, labels_N: torch.Tensor, *, batch_size: int
) -> np.ndarray:
    """uint8 NHWC images of G(z, y), batch by batch on the network's device (eval mode: batch size does not matter)."""
    device = next(generator_net.parameters()).device
    generator_net.eval()
    batches = [
        to_uint8_images(generator_net(z_ND[i : i + batch_size].to(device), labels_N[i : i + batch_size].to(device)))
        for i in range(0, len(labels_N), batch_size)
    ]
    return np.concatenate(batches)


def sample_images(
    generator_net: nn.Module,
    labels_N: np.ndarray,
    *,
    truncation: float,
    factor: float,
    seed: int,
    convention: str = "resample",
    batch_size: int = 500,
) -> np.ndarray:
    """One uint8 NHWC image per requested label, from latents truncated at τ; deterministic in seed."""
    rng = torch.Generator().manual_seed(seed)
    z = truncated_latents(
        len(labels_N), generator_net.latent_dim, truncation=truncation, factor=factor, convention=convention,
        generator=rng,
    )  # fmt: skip
    labels = torch.as_tensor(labels_N, dtype=torch.int64)
    return images_from_latents(generator_net, z, labels, batch_size=batch_size)
