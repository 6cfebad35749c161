"""`biggan`: a small BigGAN (Brock et al. 2019): a ResNet generator conditioned through conditional batch norm
on a shared class embedding and a hierarchical latent, and a ResNet projection discriminator; spectral norm on
both (their §3, after Miyato et al. 2018 and Zhang et al. 2019). The moving average of the generator's weights
that BigGAN samples from is kept by the training loop (`models/gans/ema.py`).

Smaller than BigGAN at 128 px: one ResBlock per ×2 stage, widths from --gan.g-width / --gan.d-width, no
self-attention, and any base·2^k size of `common.BASE_SIZES` (4×4 for 32 px, 7×7 for 28 px).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from distgan.errors import ConfigError
from distgan.models.gans.common import stages

SHARED_DIM = 128  # size of the shared class embedding (BigGAN's `shared_dim`)


def _sn(layer: nn.Module) -> nn.Module:
    """Orthogonal initialisation (BigGAN's G_init/D_init 'ortho'), then spectral norm."""
    nn.init.orthogonal_(layer.weight)
    return spectral_norm(layer)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-channel gain (1 + W_γ c) and bias (W_β c) come from a conditioning vector c per sample
    (de Vries et al. 2017; in BigGAN c = [shared class embedding, this block's chunk of z])."""

    def __init__(self, num_features: int, cond_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = _sn(nn.Linear(cond_dim, num_features, bias=False))
        self.bias = _sn(nn.Linear(cond_dim, num_features, bias=False))

    def forward(self, x_NCHW: torch.Tensor, cond_ND: torch.Tensor) -> torch.Tensor:
        gain, bias = 1 + self.gain(cond_ND), self.bias(cond_ND)
        return self.norm(x_NCHW) * gain[:, :, None, None] + bias[:, :, None, None]


class GeneratorBlock(nn.Module):
    """BN-ReLU-upsample-conv-BN-ReLU-conv with an upsample-1×1-conv shortcut (BigGAN's Figure 15 (b))."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int):
        super().__init__()
        self.norm1 = ConditionalBatchNorm2d(in_channels, cond_dim)
        self.conv1 = _sn(nn.Conv2d(in_channels, out_channels, 3, 1, 1))
        self.norm2 = ConditionalBatchNorm2d(out_channels, cond_dim)
        self.conv2 = _sn(nn.Conv2d(out_channels, out_channels, 3, 1, 1))
        self.shortcut = _sn(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x_NCHW: torch.Tensor, cond_ND: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x_NCHW, cond_ND)), scale_factor=2)
        h = self.conv2(F.relu(self.norm2(self.conv1(h), cond_ND)))
        return h + self.shortcut(F.interpolate(x_NCHW, scale_factor=2))


class BigGanGenerator(nn.Module):
    """G(z, y): z split into one chunk for the first linear layer and one per block (the hierarchical latent); each
    block's batch norms are conditioned on [shared embedding of y, its chunk]; images in [-1, 1]."""

    def __init__(self, *, latent_dim: int, num_classes: int, image_size: int, channels: int, width: int):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        base, num_up = stages(image_size)
        if latent_dim < num_up + 1:
            raise ConfigError(
                f"--gan.latent-dim must be ≥ {num_up + 1} for --gan.arch biggan at {image_size} px "
                f"(one chunk of z for the first layer and one per block; got {latent_dim})"
            )
        chunk = latent_dim // (num_up + 1)
        self.chunk_sizes = [latent_dim - num_up * chunk] + [chunk] * num_up  # the first takes the remainder
        self.shared = nn.Embedding(num_classes, SHARED_DIM)
        top = width * 2**num_up  # `width` channels at full resolution, doubling per ×2 stage below it
        self.project = nn.Sequential(
            _sn(nn.Linear(self.chunk_sizes[0], top * base * base)), nn.Unflatten(1, (top, base, base))
        )
        self.blocks = nn.ModuleList(
            GeneratorBlock(top // 2**i, top // 2 ** (i + 1), SHARED_DIM + chunk) for i in range(num_up)
        )
        self.output = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), _sn(nn.Conv2d(width, channels, 3, 1, 1)), nn.Tanh()
        )

    def forward(self, z_ND: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
        first, *chunks = torch.split(z_ND, self.chunk_sizes, dim=1)
        shared_NE = self.shared(labels_N)
        h = self.project(first)
        for block, chunk in zip(self.blocks, chunks, strict=True):
            h = block(h, torch.cat([shared_NE, chunk], dim=1))
        return self.output(h)


class DiscriminatorBlock(nn.Module):
    """ReLU-conv-ReLU-conv-average pool with a 1×1-conv shortcut (BigGAN's Figure 15 (c)); the first block of D
    starts without the ReLU and pools before its shortcut's conv (SN-GAN's "optimized" block)."""

    def __init__(self, in_channels: int, out_channels: int, *, first: bool):
        super().__init__()
        self.first = first
        self.conv1 = _sn(nn.Conv2d(in_channels, out_channels, 3, 1, 1))
        self.conv2 = _sn(nn.Conv2d(out_channels, out_channels, 3, 1, 1))
        self.shortcut = _sn(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x_NCHW if self.first else F.relu(x_NCHW))))
        if self.first:
            return F.avg_pool2d(h, 2) + self.shortcut(F.avg_pool2d(x_NCHW, 2))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.shortcut(x_NCHW), 2)


class BigGanDiscriminator(nn.Module):
    """D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ over spectrally normalised ResBlocks down to the base map, ReLU and
    global sum pooling (Miyato & Koyama 2018's projection, as BigGAN); returns logits (N,)."""

    def __init__(self, *, num_classes: int, image_size: int, channels: int, width: int):
        super().__init__()
        _, num_down = stages(image_size)
        widths = [channels] + [width * 2**i for i in range(num_down)]
        self.blocks = nn.Sequential(
            *(DiscriminatorBlock(widths[i], widths[i + 1], first=i == 0) for i in range(num_down))
        )
        self.linear = _sn(nn.Linear(widths[-1], 1))
        self.embed = _sn(nn.Embedding(num_classes, widths[-1]))

    def forward(self, x_NCHW: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
        h_ND = F.relu(self.blocks(x_NCHW)).sum(dim=(2, 3))
        return self.linear(h_ND).squeeze(1) + (self.embed(labels_N) * h_ND).sum(dim=1)
