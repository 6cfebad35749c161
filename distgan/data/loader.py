"""Streaming training/evaluation input from shards: DALI when installed, else webdataset + PIL.

`make_loader(shard_dir, ...)` is the front door; `loader.epoch(e)` yields batches
{"images": float32 (B, C, H, W) in [-1, 1], "labels": int64 (B,)} and, on the fallback, "indices".
Both paths share the semantics: PNG/JPEG decode → training augmentation (pad with black, random
crop back, random horizontal flip) or evaluation resize → normalise x/127.5 − 1. Decoded pixels are
identical (tests/test_data_pipeline.py); random draws differ (DALI's generator vs numpy's).

The fallback reads samples by offset through the shards' index files (the `.idx` DALI uses), so it
can follow the exact global order of `order.rank_indices` with a map-style dataset.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distgan.data.manifest import image_extension, read_manifest
from distgan.data.order import rank_indices
from distgan.data.shards import BadSamples, decode_sample, usable_shards
from distgan.data.writer import INDEX_VERSION, tar_index_lines
from distgan.errors import ConfigError, DataError

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


def read_index(shard_dir: Path, shard: dict) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """[(key, {ext: (offset, size)})] of one shard from its .idx file (made on the fly for format 1 shards)."""
    tar_path = Path(shard_dir) / shard["name"]
    idx_path = Path(shard_dir) / shard["index"] if "index" in shard else None
    lines = idx_path.read_text().splitlines() if idx_path is not None else tar_index_lines(tar_path)
    header = lines[0].split()
    if header[0] != INDEX_VERSION or int(header[1]) != len(lines) - 1:
        raise DataError(f"{idx_path or tar_path}: index header {lines[0]!r} does not match its {len(lines) - 1} lines")
    samples = []
    for line in lines[1:]:
        fields = line.split()
        entries = {fields[i]: (int(fields[i + 1]), int(fields[i + 2])) for i in range(0, len(fields), 4)}
        samples.append((fields[3].partition(".")[0], entries))
    return samples


def augment(image_HWC: np.ndarray, *, padding: int, flip: bool, rng: np.random.Generator) -> np.ndarray:
    """Pad with black by `padding` on each side, crop back at a uniform offset, mirror with p = 0.5."""
    height, width = image_HWC.shape[:2]
    if padding > 0:
        padded = np.pad(image_HWC, ((padding, padding), (padding, padding), (0, 0)))
        dy, dx = rng.integers(0, 2 * padding + 1, size=2)
        image_HWC = padded[dy : dy + height, dx : dx + width]
    if flip and rng.random() < 0.5:
        image_HWC = image_HWC[:, ::-1]
    return image_HWC


class ShardDataset(torch.utils.data.Dataset):
    """Map-style dataset over the union of a shard directory's shards, read by index-file offsets."""

    def __init__(
        self, shard_dir: Path, *, train: bool, image_size: int | None, padding: int, flip: bool, seed: int,
        shards: list[dict] | None = None,
    ):  # fmt: skip
        self.shard_dir, self.manifest = Path(shard_dir), read_manifest(shard_dir)
        shards = self.manifest["shards"] if shards is None else shards
        self.train, self.image_size, self.padding, self.flip, self.seed = train, image_size, padding, flip, seed
        self.ext = image_extension(self.manifest)
        self.samples = [(shard["name"], key, e) for shard in shards for key, e in read_index(shard_dir, shard)]
        expected = sum(shard["num_samples"] for shard in shards)
        if len(self.samples) != expected:
            raise DataError(f"{shard_dir}: index files list {len(self.samples)} samples, manifest says {expected}")
        self._files = {}
        self.bad = BadSamples("error")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, epoch_and_index: tuple[int, int]):
        """(uint8 CHW image tensor, label, index) of sample `index` as drawn in `epoch`, or a skip reason."""
        epoch, index = epoch_and_index  # the epoch travels with the index: persistent workers hold stale copies
        name, key, entries = self.samples[index]
        path = self.shard_dir / name
        if name not in self._files:  # opened lazily: each loader worker process gets its own handles
            self._files[name] = open(path, "rb")  # noqa: SIM115 (kept open for the life of the worker)
        handle, members = self._files[name], {}
        for ext, (offset, size) in entries.items():
            handle.seek(offset)
            members[ext] = handle.read(size)
            if len(members[ext]) != size:
                members[ext] = b""  # truncated tar: decode_sample reports it by shard and key
        skipped = BadSamples(self.bad.policy, quiet=True)  # per call: the reason travels back with the batch
        sample = decode_sample(members, path, key, self.ext, None, skipped)
        if sample is None:
            return skipped.reasons[0]
        image, label = sample
        if self.train:
            # Seeded by (seed, epoch, index): the draws do not depend on ranks, workers or batch size.
            rng = np.random.default_rng([self.seed, epoch, index])
            image = augment(image, padding=self.padding, flip=self.flip, rng=rng)
        elif self.image_size is not None and image.shape[:2] != (self.image_size, self.image_size):
            pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
            image = np.asarray(pil.resize((self.image_size, self.image_size), Image.BILINEAR)).reshape(
                self.image_size, self.image_size, -1
            )
        # uint8 through the worker → main process queue (4× less than float32); normalised per batch.
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), label, index


def _collate(batch):
    kept = [sample for sample in batch if not isinstance(sample, str)]
    out = {"skipped": [sample for sample in batch if isinstance(sample, str)]}
    if kept:
        out |= {
            "images": torch.stack([s[0] for s in kept]),
            "labels": torch.tensor([s[1] for s in kept], dtype=torch.int64),
            "indices": torch.tensor([s[2] for s in kept], dtype=torch.int64),
        }
    return out


class _EpochSampler(torch.utils.data.Sampler):
    """Yields (epoch, index) pairs of the current epoch's order; the loader swaps `pairs` per epoch."""

    def __init__(self):
        self.pairs: list[tuple[int, int]] = []

    def __iter__(self):
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


class PilLoader:
    """The fallback: torch DataLoader (W worker processes) over ShardDataset in `order.rank_indices` order."""

    backend = "pil"

    def __init__(self, dataset: ShardDataset, *, batch_size, num_workers, rank, world_size, seed, last, shuffle, bad):
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.rank, self.world_size, self.seed, self.last, self.shuffle, self.bad = (
            rank,
            world_size,
            seed,
            last,
            shuffle,
            bad,
        )
        dataset.bad = BadSamples(bad.policy)  # workers hold copies: skip reasons come back inside batches
        self.sampler = _EpochSampler()
        # Persistent workers: started once, not per epoch (start-up dominated short epochs).
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            collate_fn=_collate,
            persistent_workers=num_workers > 0,
        )

    def epoch(self, epoch: int, start_batch: int = 0):
        """Yield this rank's batches of `epoch` from batch `start_batch` on (a resume mid-epoch); skipped
        samples are added to `self.bad`. The order and the augmentation draws do not depend on where it starts."""
        indices = rank_indices(
            len(self.dataset),
            epoch=epoch,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size,
            last=self.last,
            shuffle=self.shuffle,
        )
        self.sampler.pairs = [(epoch, int(i)) for i in indices[start_batch * self.batch_size :]]
        for batch in self.loader:
            for reason in batch["skipped"]:
                self.bad.handle(reason)
            if "images" in batch:
                batch["images"] = batch["images"].float().div_(127.5).sub_(1.0)
                yield batch


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
    dataset = ShardDataset(
        shard_dir, train=train, image_size=image_size, padding=padding, flip=flip, seed=seed, shards=shards
    )
    return PilLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        rank=rank,
        world_size=world_size,
        seed=seed,
        last=last,
        shuffle=shuffle,
        bad=bad,
    )
