"""Streaming training/evaluation input from shards: DALI when installed, else webdataset + PIL.

`make_loader(shard_dir, ...)` is the front door; `loader.epoch(e)` yields batches
{"images": float32 (B, C, H, W) in [-1, 1], "labels": int64 (B,)} and, on the fallback, "indices".
Both paths share the semantics: PNG/JPEG decode → training augmentation (pad with black, random
crop back, random horizontal flip) or evaluation resize → normalise x/127.5 − 1. Decoded pixels are
identical (tests/test_data_pipeline.py); random draws differ (DALI's generator vs numpy's).

The fallback (`data/wds.py`) is a webdataset pipeline in a `wds.WebLoader`: webdataset splits the batches
between worker processes and decodes the samples, which it reads through the shards' index files (the
`.idx` DALI uses), so it follows the exact global order of `order.rank_indices`.
"""

import logging
from pathlib import Path

from distgan.data.manifest import read_manifest
from distgan.data.shards import BadSamples, usable_shards
from distgan.data.wds import PilLoader, ShardSamples, augment, read_index
from distgan.errors import ConfigError, DataError

__all__ = ["BACKENDS", "PilLoader", "ShardSamples", "augment", "dali_available", "make_loader", "read_index"]

BACKENDS = ("auto", "dali", "pil")
_log = logging.getLogger(__name__)
_said_dali_absent = False


def dali_available() -> bool:
    """True if NVIDIA DALI imports; logs once per process when it does not (the fallback is then used)."""
    global _said_dali_absent
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        if not _said_dali_absent:
            _log.warning("NVIDIA DALI is not installed: using the webdataset+PIL DataLoader (pip install .[dali])")
            _said_dali_absent = True
        return False
    return True


def make_loader(
    shard_dir: Path,
    *,
    batch_size: int,
    train: bool,
    image_size: int | None = None,
    padding: int = 0,
    flip: bool = False,
    num_workers: int = 2,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    last: str = "pad",
    shuffle: bool | None = None,
    backend: str = "auto",
    bad: BadSamples | None = None,
    verify: bool = True,
    dali_checkpoint: str | None = None,
):
    """A loader over a shard directory for this rank; `backend` "auto" picks DALI when installed.

    train=True: augmentation (padding, flip) and a per-epoch shuffle; train=False: resize to image_size
    (if given) in shard order. `num_workers` is DataLoader processes (fallback) or DALI threads.
    `dali_checkpoint`: a `DaliLoader.state()` to continue from (DALI only; the fallback resumes by
    `epoch(e, start_batch)`).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--classifier.loader-backend must be one of {BACKENDS} (got {backend!r})")
    if batch_size < 1 or num_workers < 0:
        raise ConfigError(f"batch size must be ≥ 1 and workers ≥ 0 (got {batch_size}, {num_workers})")
    shuffle = train if shuffle is None else shuffle
    bad = bad or BadSamples()
    # Digests are checked once here (each rank), not per epoch; verify=False skips the read of every shard.
    manifest = read_manifest(shard_dir)
    if train and manifest["image_shape_HWC"] is None:
        raise DataError(f"{shard_dir}: training crops need one image size; reshard with --image-size")
    shards = usable_shards(shard_dir, manifest, verify=verify, bad=bad)
    if not shards:
        raise DataError(f"{shard_dir}: no usable shard left ({bad.num_skipped} samples skipped)")
    if backend == "dali" or (backend == "auto" and dali_available()):
        from distgan.data.dali_pipeline import DaliLoader

        return DaliLoader(
            shard_dir,
            batch_size=batch_size,
            train=train,
            image_size=image_size,
            padding=padding,
            flip=flip,
            num_threads=max(num_workers, 1),
            rank=rank,
            world_size=world_size,
            seed=seed,
            shuffle=shuffle,
            shards=shards,
            checkpoint=dali_checkpoint,
        )
    samples = ShardSamples(
        shard_dir, shards=shards, train=train, image_size=image_size, padding=padding, flip=flip,
        batch_size=batch_size, rank=rank, world_size=world_size, seed=seed, last=last, shuffle=shuffle,
    )  # fmt: skip
    return PilLoader(samples, num_workers=num_workers, bad=bad)
