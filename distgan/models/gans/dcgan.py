"""`dcgan` and `acgan`: Radford et al. (2016)'s networks, class-conditional by input (DCGAN) or by an auxiliary
classifier in the discriminator (Odena et al. 2017, AC-GAN). Both generators are the same network.

DCGAN's rules (§3): fractionally-strided convolutions in G, strided ones in D, no pooling and no fully connected
hidden layers; batch norm in both except G's output and D's input layer; ReLU in G with tanh at the output,
LeakyReLU(0.2) in D; weights from N(0, 0.02). D's batch norm becomes layer norm under a gradient penalty, whose
per-sample gradients batch norm would mix (Gulrajani et al. 2017, §4).
"""

import torch
import torch.nn.functional as F
from torch import nn

from distgan.models.gans.common import dcgan_init, stages


class DcganGenerator(nn.Module):
    """G(z, y): [z, embed(y)] projected to a base×base map (4×4, or 7×7 for 28-pixel images), then ×2 stages of
    fractionally-strided conv-BN-ReLU; the last stage makes the image channels, through tanh."""

    def __init__(self, *, latent_dim: int, num_classes: int, image_size: int, channels: int, width: int):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        base, num_up = stages(image_size)
        top = width * 2 ** (num_up - 1)  # `width` channels in the last hidden stage, doubling towards the base map
        self.embed = nn.Embedding(num_classes, latent_dim)
        layers: list[nn.Module] = [
            nn.Linear(2 * latent_dim, top * base * base, bias=False),  # "project and reshape"
            nn.Unflatten(1, (top, base, base)),
            nn.BatchNorm2d(top),
            nn.ReLU(),
        ]
        for _ in range(num_up - 1):
            layers += [nn.ConvTranspose2d(top, top // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(top // 2), nn.ReLU()]
            top //= 2
        layers += [nn.ConvTranspose2d(top, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z_ND: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z_ND, self.embed(labels_N)], dim=1))


def _strided_features(in_channels: int, image_size: int, width: int, layer_norm: bool) -> tuple[nn.Sequential, int]:
    """D's convolutions from image_size down to the base map: strided conv-norm-LeakyReLU(0.2), no norm on the
    first; returns them and the flattened size of their output."""
    base, num_down = stages(image_size)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    for _ in range(num_down - 1):
        norm = nn.GroupNorm(1, width * 2) if layer_norm else nn.BatchNorm2d(width * 2)  # GroupNorm(1, C): layer norm
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), norm, nn.LeakyReLU(0.2)]
        width *= 2
    return nn.Sequential(*layers, nn.Flatten()), width * base * base


class DcganDiscriminator(nn.Module):
    """D(x, y): the image with one-hot label maps as extra input channels, strided convolutions to the base map,
    flattened into one real/fake logit (N,)."""

    def __init__(self, *, num_classes: int, image_size: int, channels: int, width: int, layer_norm: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.features, num_features = _strided_features(channels + num_classes, image_size, width, layer_norm)
        self.logit = nn.Linear(num_features, 1)
        dcgan_init(self)

    def forward(self, x_NCHW: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
        maps_NKHW = F.one_hot(labels_N, self.num_classes).to(x_NCHW.dtype)[:, :, None, None]
        maps_NKHW = maps_NKHW.expand(-1, -1, *x_NCHW.shape[2:])
        return self.logit(self.features(torch.cat([x_NCHW, maps_NKHW], dim=1))).squeeze(1)


class AcganDiscriminator(nn.Module):
    """AC-GAN's D(x): DCGAN's strided convolutions on the image alone, with two heads: the real/fake logit (N,) and
    class logits (N, K). The labels are not an input (the class head predicts them); `forward` takes them to
    keep the discriminators' signature."""

    def __init__(self, *, num_classes: int, image_size: int, channels: int, width: int, layer_norm: bool = False):
        super().__init__()
        self.features, num_features = _strided_features(channels, image_size, width, layer_norm)
        self.logit = nn.Linear(num_features, 1)
        self.classes = nn.Linear(num_features, num_classes)
        dcgan_init(self)

    def forward(self, x_NCHW: torch.Tensor, labels_N: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_ND = self.features(x_NCHW)
        return self.logit(h_ND).squeeze(1), self.classes(h_ND)
