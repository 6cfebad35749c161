"""A trial's grid of generated samples, one row per class: a PNG drawn with PIL alone (a trial's process does
not import matplotlib for it)."""

from pathlib import Path

import numpy as np
from PIL import Image

from distgan.runtime.atomic import atomic_path


def sample_grid(images_NHWC: np.ndarray, labels_N: np.ndarray, path: Path, per_class: int = 8, scale: int = 4) -> None:
    """A PNG with one row per class of its first `per_class` images, enlarged `scale`× (nearest)."""
    num_classes = int(labels_N.max()) + 1
    _, height, width, channels = images_NHWC.shape
    grid = np.zeros((num_classes * (height + 1), per_class * (width + 1), channels), np.uint8)
    for k in range(num_classes):
        for j, index in enumerate(np.flatnonzero(labels_N == k)[:per_class]):
            grid[k * (height + 1) : k * (height + 1) + height, j * (width + 1) : j * (width + 1) + width] = images_NHWC[
                index
            ]
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(grid[:, :, 0] if channels == 1 else grid).save(tmp)
