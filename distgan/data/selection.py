"""Chosen samples of a shard directory, read by offset through the shards' index files and decoded chunk by chunk:
the N images the metrics use of a set too large for memory (ImageNet's 1.28 M), without decoding the rest."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from distgan.data.manifest import image_extension, read_manifest
from distgan.data.order import evenly_spread_indices
from distgan.data.shards import read_labels
from distgan.data.wds import read_index
from distgan.errors import DataError


def indexed_samples(shard_dir: Path) -> list[tuple[Path, str, dict, int]]:
    """(tar path, key, {ext: (offset, size)}, label) of every sample in order: the members from the index files,
    the labels from the set's labels file (`shards.read_labels`); no sample is read."""
    labels = read_labels(shard_dir).tolist()
    out = []
    for shard in read_manifest(shard_dir)["shards"]:
        path = Path(shard_dir) / shard["name"]
        out += [
            (path, key, entries, labels[len(out) + i]) for i, (key, entries) in enumerate(read_index(shard_dir, shard))
        ]
    return out


class ShardSelection:
    """The samples `indices` (in order) of a shard directory: their labels now, their images on demand."""

    def __init__(self, shard_dir: Path, indices: np.ndarray | None = None, *, num_images: int = 0):
        """`indices`, or else `num_images` spread evenly over the set (0: all)."""
        manifest = read_manifest(shard_dir)
        samples = indexed_samples(shard_dir)
        if indices is None:
            indices = evenly_spread_indices(len(samples), num_images)
        self.shard_dir, self.ext = Path(shard_dir), image_extension(manifest)
        self.shape_HWC = manifest.get("image_shape_HWC")
        if self.shape_HWC is None:
            raise DataError(f"{shard_dir}: images of varying size; reshard with a resize to score them")
        self.class_names = tuple(manifest["class_names"])
        self.samples = [samples[i] for i in indices]
        self.labels_N = np.array([label for *_, label in self.samples], np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def images(self, start: int, stop: int) -> np.ndarray:
        """uint8 [stop − start, H, W, C] of samples start..stop of the selection."""
        out = np.empty((stop - start, *self.shape_HWC), np.uint8)
        for i, (path, key, entries, _) in enumerate(self.samples[start:stop]):
            offset, size = entries[self.ext]
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(size)
            try:
                with Image.open(io.BytesIO(data)) as pil:
                    image = np.asarray(pil)
            except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
                raise DataError(f"{path} key {key}: {self.ext.upper()} cannot be decoded ({err})") from None
            if image.size != out[i].size:
                raise DataError(f"{path} key {key}: image shape {image.shape}, manifest says {tuple(self.shape_HWC)}")
            out[i] = image.reshape(out[i].shape)
        return out
