"""Class-conditional DCGAN: a generator with a class embedding and a projection discriminator.

The generator follows Radford et al. (2016) — a linear map to 4×4, then ×2 upsampling stages of
conv-BN-ReLU, tanh output — with the class embedding concatenated to the latent. The discriminator
is the projection discriminator of Miyato & Koyama (2018) with spectral normalisation, the
conditioning Ravuri & Vinyals' BigGAN-deep uses.
"""

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from distgan.errors import ConfigError
from distgan.runtime.atomic import load_plain, save_torch_atomic

if TYPE_CHECKING:  # the config validates against this module (GAN image sizes): no import at run time
    from distgan.config import GanConfig

GAN_IMAGE_SIZE_RULE = "a power of two ≥ 8 (the GAN grows a 4×4 map by ×2 stages)"


def is_gan_image_size(image_size: int) -> bool:
    return image_size >= 8 and image_size & (image_size - 1) == 0


def _num_upsamplings(image_size: int) -> int:
    if not is_gan_image_size(image_size):
        raise ConfigError(f"GAN image size must be {GAN_IMAGE_SIZE_RULE} (got {image_size})")
    return int(math.log2(image_size // 4))


class ConditionalGenerator(nn.Module):
    """G(z, y): latent (N, latent_dim) and class (N,) to images (N, C, H, W) in [-1, 1]."""

    def __init__(self, *, latent_dim: int, num_classes: int, image_size: int, channels: int, base_width: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        num_up = _num_upsamplings(image_size)
        width = base_width * 2**num_up
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.project = nn.Sequential(nn.Linear(2 * latent_dim, width * 16), nn.Unflatten(1, (width, 4, 4)))
        blocks: list[nn.Module] = [nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(num_up):
            blocks += [
                nn.Upsample(scale_factor=2),
                nn.Conv2d(width, width // 2, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        blocks += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, z_ND: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(torch.cat([z_ND, self.embed(labels_N)], dim=1)))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ with spectrally normalised layers; returns logits (N,)."""

    def __init__(self, *, num_classes: int, image_size: int, channels: int, base_width: int):
        super().__init__()
        num_down = _num_upsamplings(image_size)
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(channels, base_width, 3, 1, 1)), nn.LeakyReLU(0.1)]
        width = base_width
        for _ in range(num_down):
            layers += [spectral_norm(nn.Conv2d(width, width * 2, 4, 2, 1)), nn.LeakyReLU(0.1)]
            width *= 2
        self.body = nn.Sequential(*layers)
        self.linear = spectral_norm(nn.Linear(width, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, width))

    def forward(self, x_NCHW: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
        h_ND = self.body(x_NCHW).sum(dim=(2, 3))  # global sum pooling, as in SN-GAN
        return self.linear(h_ND).squeeze(1) + (self.embed(labels_N) * h_ND).sum(dim=1)


def save_generator(path: Path, generator: ConditionalGenerator, gan: "GanConfig", *, image_size: int, channels: int):
    """Write the generator with the config and shapes that rebuild it, atomically: tensors and plain values only,
    so that `load_generator` reads it without unpickling objects."""
    payload = {
        "gan_config": dataclasses.asdict(gan),
        "num_classes": generator.num_classes,
        "image_size": image_size,
        "channels": channels,
        "state_dict": generator.state_dict(),
    }
    save_torch_atomic(payload, path)


def load_generator(path: Path) -> ConditionalGenerator:
    """Rebuild a generator saved by `save_generator`; a file holding other objects is refused (DataError)."""
    payload = load_plain(path)
    gan = payload["gan_config"]
    generator = ConditionalGenerator(
        latent_dim=gan["latent_dim"],
        num_classes=payload["num_classes"],
        image_size=payload["image_size"],
        channels=payload["channels"],
        base_width=gan["g_width"],
    )
    generator.load_state_dict(payload["state_dict"])
    return generator
