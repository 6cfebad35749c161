"""What the GAN architectures share: the image sizes they grow to, and weight initialisations."""

from torch import nn

from distgan.errors import ConfigError

# Every architecture projects z to a base×base map and grows it by ×2 stages: 4·2^k covers 8, 16, 32, 64, ... and
# 7·2^k the 28-pixel MNIST family (7 → 14 → 28, the classic MNIST DCGAN).
BASE_SIZES = (4, 7)


def size_stages(image_size: int, base_sizes: tuple[int, ...] = BASE_SIZES) -> tuple[int, int] | None:
    """(base, k) with image_size = base·2^k and k ≥ 1, or None when no base in `base_sizes` grows to image_size."""
    for base in base_sizes:
        quotient, remainder = divmod(image_size, base)
        if remainder == 0 and quotient >= 2 and quotient & (quotient - 1) == 0:
            return base, quotient.bit_length() - 1
    return None


def size_rule(base_sizes: tuple[int, ...] = BASE_SIZES) -> str:
    """The sizes `size_stages` accepts, in words, with the first few of them."""
    sizes = sorted(base * 2**k for base in base_sizes for k in range(1, 5))[:8]
    forms = " or ".join(f"{base}·2^k" for base in base_sizes)
    return f"{forms} with k ≥ 1 ({', '.join(map(str, sizes))}, …)"


def stages(image_size: int, base_sizes: tuple[int, ...] = BASE_SIZES) -> tuple[int, int]:
    """`size_stages`, or a ConfigError naming the rule."""
    found = size_stages(image_size, base_sizes)
    if found is None:
        raise ConfigError(f"GAN image size must be {size_rule(base_sizes)} (got {image_size})")
    return found


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. (2016) §4: weights from N(0, 0.02); batch-norm scales from N(1, 0.02), shifts 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d | nn.GroupNorm) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
