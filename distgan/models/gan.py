"""The class-conditional GANs `--gan.arch` names, and their generator files.

Every architecture is a generator G(z, y) → images in [-1, 1] (attributes `latent_dim`, `num_classes`) and a
discriminator D(x, y) → real/fake logits (N,), or (logits, class logits (N, K)) with a class head. Their parts
live in `models/gans/` (docs/gans.md):

- `dcgan`: Radford et al. (2016); the label is an embedding beside z in G and one-hot maps beside x in D.
- `acgan`: DCGAN's generator and an auxiliary-classifier discriminator (Odena et al. 2017).
- `sngan-projection`: distgan's first GAN (a DCGAN-style G, a spectrally normalised projection D).
- `biggan`: a small BigGAN (Brock et al. 2019), sampled from the moving average of G's weights.
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

from torch import nn

from distgan.errors import ConfigError
from distgan.models.gans.biggan import BigGanDiscriminator, BigGanGenerator
from distgan.models.gans.common import BASE_SIZES, size_rule, size_stages
from distgan.models.gans.dcgan import AcganDiscriminator, DcganDiscriminator, DcganGenerator
from distgan.models.gans.losses import GAN_LOSSES
from distgan.models.gans.sngan import ConditionalGenerator, ProjectionDiscriminator
from distgan.runtime.atomic import load_plain, save_torch_atomic
from distgan.runtime.registry import Registry

FIRST_ARCH = "sngan-projection"  # of generator files written before --gan.arch existed


@dataclasses.dataclass(frozen=True, kw_only=True)
class GanSpec:
    """What builds a GAN's networks (train/gan.py makes it from the sweep's GanConfig)."""

    arch: str  # a GAN_ARCHS name
    latent_dim: int  # size of z
    g_width: int  # generator channels at full resolution
    d_width: int  # discriminator channels at full resolution
    loss: str  # a GAN_LOSSES name: one with a gradient penalty takes a D without batch norm


@dataclasses.dataclass(frozen=True, kw_only=True)
class GanArch:
    """What --gan.arch names: builders of G and D, the image sizes they make, and what the training loop does
    differently for it."""

    # (latent_dim=, num_classes=, image_size=, channels=, width=) -> G
    generator: Callable[..., nn.Module]
    # (num_classes=, image_size=, channels=, width=, layer_norm=) -> D; layer_norm: no batch norm (a gradient penalty)
    discriminator: Callable[..., nn.Module]
    base_sizes: tuple[int, ...] = BASE_SIZES  # image sizes: base·2^k, k ≥ 1
    class_head: bool = False  # D returns (logits, class logits): AC-GAN's class loss terms join both losses
    separate_real_fake: bool = False  # D has batch norm: real and fake batches go through it apart, as in DCGAN
    weight_average: bool = False  # generator.pt holds the moving average of G's weights (--gan.ema-decay)

    def __call__(self, spec: GanSpec, *, num_classes: int, image_size: int, channels: int):
        """(G, D) for images of image_size² pixels and `channels` channels."""
        check_image_size(spec.arch, image_size)
        generator = self.generator(
            latent_dim=spec.latent_dim, num_classes=num_classes, image_size=image_size, channels=channels,
            width=spec.g_width,
        )  # fmt: skip
        discriminator = self.discriminator(
            num_classes=num_classes, image_size=image_size, channels=channels, width=spec.d_width,
            layer_norm=GAN_LOSSES.get_or_raise(spec.loss).gradient_penalty,
        )  # fmt: skip
        return generator, discriminator


def _sngan_generator(*, latent_dim: int, num_classes: int, image_size: int, channels: int, width: int):
    return ConditionalGenerator(
        latent_dim=latent_dim, num_classes=num_classes, image_size=image_size, channels=channels, base_width=width
    )


def _sngan_discriminator(*, num_classes: int, image_size: int, channels: int, width: int, layer_norm: bool):
    # No batch norm to replace under a gradient penalty (layer_norm).
    return ProjectionDiscriminator(num_classes=num_classes, image_size=image_size, channels=channels, base_width=width)


def _biggan_discriminator(*, num_classes: int, image_size: int, channels: int, width: int, layer_norm: bool):
    return BigGanDiscriminator(num_classes=num_classes, image_size=image_size, channels=channels, width=width)


GAN_ARCHS: Registry[GanArch] = Registry("GAN architecture", "--gan.arch")
GAN_ARCHS.add("dcgan", GanArch(generator=DcganGenerator, discriminator=DcganDiscriminator, separate_real_fake=True))
GAN_ARCHS.add(
    "acgan",
    GanArch(generator=DcganGenerator, discriminator=AcganDiscriminator, class_head=True, separate_real_fake=True),
)
GAN_ARCHS.add(FIRST_ARCH, GanArch(generator=_sngan_generator, discriminator=_sngan_discriminator))
GAN_ARCHS.add("biggan", GanArch(generator=BigGanGenerator, discriminator=_biggan_discriminator, weight_average=True))


def makes_image_size(arch: str, image_size: int) -> bool:
    """Whether --gan.arch `arch` makes images of image_size² pixels."""
    return size_stages(image_size, GAN_ARCHS.get_or_raise(arch).base_sizes) is not None


def image_size_rule(arch: str) -> str:
    """The image sizes of --gan.arch `arch`, in words (what a refused --data.image-size is told)."""
    bases = GAN_ARCHS.get_or_raise(arch).base_sizes
    maps = " or ".join(f"{base}×{base}" for base in bases)
    return f"{size_rule(bases)}: --gan.arch {arch} grows a {maps} map by ×2 stages"


def check_image_size(arch: str, image_size: int) -> None:
    """A ConfigError naming the architecture and its rule unless it makes image_size² pixels."""
    if not makes_image_size(arch, image_size):
        raise ConfigError(f"GAN image size must be {image_size_rule(arch)} (got {image_size})")


def build_networks(spec: GanSpec, *, num_classes: int, image_size: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) of spec.arch, freshly initialised (from torch's global generator)."""
    return GAN_ARCHS.get_or_raise(spec.arch)(spec, num_classes=num_classes, image_size=image_size, channels=channels)


def write_generator(path: Path, generator: nn.Module, gan_config: dict, *, image_size: int, channels: int) -> None:
    """Write the generator with its GAN's config as plain values (`arch`, `latent_dim` and `g_width` among them) and
    the shapes that rebuild it, atomically: tensors and plain values only, so that `load_generator` reads it without
    unpickling objects."""
    payload = {
        "gan_config": dict(gan_config),
        "num_classes": generator.num_classes,
        "image_size": image_size,
        "channels": channels,
        "state_dict": generator.state_dict(),
    }
    save_torch_atomic(payload, path)


def load_generator(path: Path) -> nn.Module:
    """Rebuild a generator written by `write_generator` (any architecture; `forward(z_ND, labels_N)` → NCHW images
    in [-1, 1]); a file holding other objects is refused (DataError)."""
    payload = load_plain(path)
    gan = payload["gan_config"]
    arch = gan.get("arch", FIRST_ARCH)  # files written before --gan.arch are of the first architecture
    generator = GAN_ARCHS.get_or_raise(arch).generator(
        latent_dim=gan["latent_dim"], num_classes=payload["num_classes"], image_size=payload["image_size"],
        channels=payload["channels"], width=gan["g_width"],
    )  # fmt: skip
    generator.load_state_dict(payload["state_dict"])
    return generator
