"""A synthetic set's labels and images as the sweep makes them, for callers that read the set without writing it
(`distgan metrics --fake generator.pt`): the same labels (`synthetic_labels`) and, shard by shard, the same images
that `sampling.sample_to_shards` writes with the same seed, shard size and batch size."""

import numpy as np
import torch

from distgan.data.mixtures import class_quotas
from distgan.generators.contract import LoadedGenerator, checked_sample
from distgan.generators.sampling import shard_seed


def synthetic_labels(class_counts: list[int], seed: int, num_images: int = 0) -> np.ndarray:
    """The classes of a synthetic set: the real training split's class counts (from its manifest: no image is read),
    or, for num_images > 0, that many images split over the classes in the same proportions (largest remainder, as
    mixtures are: the quotas sum exactly to num_images); in a seeded random order, so that every shard holds every
    class as a shuffled real split's would."""
    counts = class_quotas(class_counts, num_images) if num_images else class_counts
    labels_N = np.repeat(np.arange(len(class_counts), dtype=np.int64), counts)
    return np.random.default_rng(seed).permutation(labels_N)


def shard_images(
    loaded: LoadedGenerator,
    labels_N: np.ndarray,
    knob_value: float | None,
    *,
    seed: int,
    shard_index: int,
    shard_size: int,
    batch_size: int,
) -> np.ndarray:
    """uint8 NHWC images of shard `shard_index` of the set of labels_N: its batches drawn in order from one
    torch.Generator seeded with `shard_seed(seed, shard_index)`, each through the contract (`checked_sample`)."""
    start, stop = shard_index * shard_size, min((shard_index + 1) * shard_size, len(labels_N))
    rng = torch.Generator().manual_seed(shard_seed(seed, shard_index))
    batches = []
    for first in range(start, stop, batch_size):
        labels = torch.from_numpy(labels_N[first : min(first + batch_size, stop)])
        with torch.no_grad():
            batches.append(checked_sample(loaded, labels, knob_value, rng).numpy())
    return np.concatenate(batches)


class SyntheticImages:
    """images(start, stop) of a synthetic set, generated on demand one shard at a time (the last one kept: readers
    go through the set in order), never written."""

    def __init__(self, loaded: LoadedGenerator, labels_N: np.ndarray, knob_value: float | None, *, seed: int,
                 shard_size: int, batch_size: int):  # fmt: skip
        self.loaded, self.labels_N, self.knob_value = loaded, labels_N, knob_value
        self.seed, self.shard_size, self.batch_size = seed, shard_size, batch_size
        self._shard: tuple[int, np.ndarray] | None = None

    def __call__(self, start: int, stop: int) -> np.ndarray:
        parts = []
        while start < stop:
            k = start // self.shard_size
            if self._shard is None or self._shard[0] != k:
                self._shard = (k, shard_images(self.loaded, self.labels_N, self.knob_value, seed=self.seed,
                                               shard_index=k, shard_size=self.shard_size,
                                               batch_size=self.batch_size))  # fmt: skip
            end = min(stop, (k + 1) * self.shard_size)
            parts.append(self._shard[1][start - k * self.shard_size : end - k * self.shard_size])
            start = end
        return np.concatenate(parts)
