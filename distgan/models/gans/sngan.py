"""`sngan-projection`: distgan's first GAN, kept as it was at 4·2^k pixels (its generator files load unchanged).

The generator follows Radford et al. (2016) — a linear map to a base×base map, then ×2 upsampling stages of
conv-BN-ReLU, tanh output — with the class embedding concatenated to the latent. The discriminator is the
projection discriminator of Miyato & Koyama (2018) with spectral normalisation (Miyato et al. 2018), the
conditioning Ravuri & Vinyals' BigGAN-deep uses.
"""

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from distgan.models.gans.common import stages


class ConditionalGenerator(nn.Module):
    """G(z, y): latent (N, latent_dim) and class (N,) to images (N, C, H, W) in [-1, 1]."""

    def __init__(self, *, latent_dim: int, num_classes: int, image_size: int, channels: int, base_width: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        base, num_up = stages(image_size)
        width = base_width * 2**num_up
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.project = nn.Sequential(
            nn.Linear(2 * latent_dim, width * base * base), nn.Unflatten(1, (width, base, base))
        )
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
        _, num_down = stages(image_size)
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
