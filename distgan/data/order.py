"""Deterministic distributed epoch order: which global sample indices each rank reads in an epoch.

One seeded permutation of the union of all shards per epoch, identical on every rank (it depends on
(seed, epoch) only); rank r takes positions r, r + R, r + 2R, ... (R = world size, nodes included).
Within a rank, the DataLoader's sampler hands whole batches to its W workers, so each index is read by
exactly one worker: across R ranks × W workers every sample is seen exactly once per epoch, except:

- last="pad" (default, as torch's DistributedSampler): the permutation is extended by wrap-around to a
  multiple of R, so the first (−N mod R) < R samples of the epoch's order are seen twice;
- last="drop": the permutation is cut to a multiple of R, so its last (N mod R) < R samples are not seen.

Both keep every rank at the same number of samples (DDP needs equal step counts).
"""

import math

import numpy as np

LAST_POLICIES = ("pad", "drop")


def epoch_permutation(num_samples: int, *, epoch: int, seed: int) -> np.ndarray:
    """The epoch's order of all sample indices; the same on every rank and node."""
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def rank_indices(
    num_samples: int, *, epoch: int, seed: int, rank: int, world_size: int, last: str = "pad", shuffle: bool = True
) -> np.ndarray:
    """This rank's global sample indices for an epoch (see the module docstring for pad/drop)."""
    assert last in LAST_POLICIES, last  # callers pass a constant; no flag sets it
    assert 0 <= rank < world_size, (rank, world_size)
    order = epoch_permutation(num_samples, epoch=epoch, seed=seed) if shuffle else np.arange(num_samples)
    if last == "pad":
        order = np.resize(order, math.ceil(num_samples / world_size) * world_size)  # repeats the head
    else:
        order = order[: num_samples // world_size * world_size]
    return order[rank::world_size]


def evenly_spread_indices(num_samples: int, num_images: int) -> np.ndarray:
    """`num_images` indices spread evenly over [0, num_samples) (all when 0 or more than there are): every class
    keeps its share whatever the set's order (shards are often written class by class)."""
    if 0 < num_images < num_samples:
        return np.round(np.linspace(0, num_samples - 1, num_images)).astype(np.int64)
    return np.arange(num_samples)
