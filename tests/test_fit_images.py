"""Generated images fitted to the real data's form (`fit_NHWC`, the one door the sampling jobs use), batched in torch,
against PIL image by image: the luma conversion is PIL's exactly; the antialiased bilinear resize is within 1 level of
PIL's BILINEAR (what `resize_NHWC` does to real images), with at most 1 % of the values off by that level."""

import numpy as np
import pytest
from PIL import Image

from distgan.data.sources import fit_NHWC, resize_NHWC

MAX_LEVEL_DIFFERENCE = 1  # uint8 levels, any pixel
MAX_FRACTION_DIFFERENT = 0.01  # of all values


def smooth_images(num: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """Noise over gradients and edges: what a resize must not alias, in both directions of every axis."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size)
    base = ramp[None, :, None, None] + ramp[None, None, ::-1, None] * (np.arange(channels) + 1)[None, None, None] / 4
    images = base + rng.normal(0, 25, (num, size, size, channels))
    images[:, size // 3 : size // 2] += 60  # a hard edge
    return images.clip(0, 255).astype(np.uint8)


def pil_fit(images_NHWC: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """The reference: each image converted by PIL, then resized as real images are (`resize_NHWC`, PIL bilinear)."""
    mode = "L" if channels == 1 else "RGB"
    converted = np.stack(
        [
            np.asarray(Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert(mode))
            for image in images_NHWC
        ]
    ).reshape(*images_NHWC.shape[:3], channels)
    return resize_NHWC(converted, image_size)


@pytest.mark.parametrize(
    ("size", "channels", "image_size", "fit_channels"),
    [
        (128, 3, 32, 3),  # BigGAN-deep 128 onto CIFAR-10
        (256, 3, 224, 3),  # a mild downscale, where antialiasing barely acts
        (64, 3, 28, 1),  # onto MNIST: luma, then down
        (16, 1, 32, 3),  # up, grey to RGB
        (17, 3, 8, 3),  # odd sizes
    ],
)
def test_batched_fit_is_pils_within_one_level(size, channels, image_size, fit_channels):
    images = smooth_images(6, size, channels)
    fitted = fit_NHWC(images, image_size, fit_channels)
    reference = pil_fit(images, image_size, fit_channels)
    assert fitted.dtype == np.uint8 and fitted.shape == reference.shape == (6, image_size, image_size, fit_channels)
    difference = np.abs(fitted.astype(np.int16) - reference)
    assert difference.max() <= MAX_LEVEL_DIFFERENCE
    assert (difference > 0).mean() <= MAX_FRACTION_DIFFERENT


def test_luma_conversion_is_pils_exactly():
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    assert np.array_equal(fit_NHWC(images, 16, 1), pil_fit(images, 16, 1))


def test_images_already_in_form_pass_unchanged_and_nothing_gives_nothing():
    images = smooth_images(3, 20, 3)
    assert np.array_equal(fit_NHWC(images, 20, 3), images)
    assert fit_NHWC(images[:0], 8, 1).shape == (0, 8, 8, 1)
