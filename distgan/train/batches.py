"""Where the classifier loop's batches come from: decoded arrays in memory, or shards streamed each epoch.

`train_classifier` takes either an `ImageSplit` (the memory path, unchanged) or a `ShardSource` (the
stream path: `data.loader.make_loader`, DALI or its webdataset+PIL fallback, doing the training
augmentation). Both are wrapped here in one protocol the loop reads top to bottom:

    batches.epoch(epoch, start_step)  → per step, this rank's micro-batches
    batches.loss_fn(model, micro)     → mean cross-entropy of one micro-batch
    batches.state() / restore(state)  → what a checkpoint needs to resume the data position exactly

`open_split` makes the memory/stream decision of `--classifier.loader` (docs/data.md).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distgan.config import ClassifierConfig
from distgan.data.loader import make_loader
from distgan.data.manifest import read_manifest
from distgan.data.order import rank_indices
from distgan.data.shards import BadSamples, read_shards
from distgan.data.sources import ImageSplit
from distgan.data.transforms import random_crop_flip, to_model_input
from distgan.errors import DataError
from distgan.runtime import distributed

# "auto" streams when the memory path would hold more than this per rank. The memory path keeps the
# decoded uint8 pixels and their float32 model input on every rank: 5 bytes per pixel value.
MEMORY_CAP_GIB = 2.0
MEMORY_BYTES_PER_VALUE = 5


@dataclass(frozen=True, kw_only=True)
class ShardSource:
    """A shard directory read through `make_loader` (the stream path), with the loader's options."""

    shard_dir: Path
    backend: str = "auto"  # "dali", "pil" or "auto" (DALI when installed)
    num_workers: int = 2  # DALI threads or DataLoader worker processes
    bad: BadSamples | None = None

    @property
    def manifest(self) -> dict:
        return read_manifest(self.shard_dir)


TrainingData = ImageSplit | ShardSource


def memory_gib(shard_dir: Path) -> float:
    """GiB the memory path would hold per rank for a shard directory (inf for mixed image sizes)."""
    manifest = read_manifest(shard_dir)
    if manifest["image_shape_HWC"] is None:
        return math.inf
    return manifest["num_samples"] * math.prod(manifest["image_shape_HWC"]) * MEMORY_BYTES_PER_VALUE / 2**30


def loader_workers(cfg: ClassifierConfig) -> int:
    """`--classifier.loader-workers`, or unset: this worker's CPUs, which the launcher (train/launch.py) has given
    torch as its thread count from `--cpus-per-worker` (floor, at least 1), e.g. 8 under the ImageNet recipe."""
    return cfg.loader_workers if cfg.loader_workers is not None else max(1, torch.get_num_threads())


def open_split(shard_dir: Path, cfg: ClassifierConfig, *, bad: BadSamples | None = None) -> TrainingData:
    """The data of a shard directory as `cfg.loader` says: "memory" reads it all now, "stream" returns a
    ShardSource, "auto" streams when `memory_gib` passes MEMORY_CAP_GIB."""
    stream = cfg.loader == "stream" or (cfg.loader == "auto" and memory_gib(shard_dir) > MEMORY_CAP_GIB)
    if stream:
        return ShardSource(
            shard_dir=Path(shard_dir), backend=cfg.loader_backend, num_workers=loader_workers(cfg), bad=bad
        )
    return read_shards(Path(shard_dir), bad=bad)


def split_info(data: TrainingData) -> tuple[int, int, tuple[str, ...]]:
    """(number of samples, image channels, class names) of either kind of data."""
    if isinstance(data, ImageSplit):
        return data.labels_N.shape[0], data.images_NHWC.shape[3], data.class_names
    manifest = data.manifest
    if manifest["image_shape_HWC"] is None:
        raise DataError(f"{data.shard_dir}: training crops need one image size; reshard with --image-size")
    return manifest["num_samples"], manifest["image_shape_HWC"][2], tuple(manifest["class_names"])


class MemoryBatches:
    """The memory path: index micro-batches into decoded arrays, augmented in `loss_fn` by a seeded generator."""

    def __init__(self, split: ImageSplit, cfg: ClassifierConfig, *, step_samples: int, micro_batch: int, device):
        self.cfg, self.step_samples, self.micro_batch, self.device = cfg, step_samples, micro_batch, device
        self.images, self.labels = to_model_input(split.images_NHWC), torch.as_tensor(split.labels_N)
        self.num_samples = split.labels_N.shape[0]
        self.steps_per_epoch = math.ceil(math.ceil(self.num_samples / distributed.world_size()) / step_samples)
        self.augment_rng = torch.Generator().manual_seed(cfg.seed * 7919 + distributed.rank())

    def epoch(self, epoch: int, start_step: int):
        """Yield this rank's micro-batches (index tensors) of each step of `epoch` from `start_step` on."""
        indices = torch.from_numpy(
            rank_indices(self.num_samples, epoch=epoch, seed=self.cfg.seed, rank=distributed.rank(),
                         world_size=distributed.world_size())
        )  # fmt: skip
        for step in range(start_step, self.steps_per_epoch):
            batch = indices[step * self.step_samples : (step + 1) * self.step_samples]
            yield [part for part in batch.split(self.micro_batch) if len(part)]

    def loss_fn(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        x = random_crop_flip(
            self.images[batch], padding=cfg.crop_padding, flip=cfg.horizontal_flip, generator=self.augment_rng
        )
        return F.cross_entropy(model(x.to(self.device, non_blocking=True)), self.labels[batch].to(self.device))

    def state(self) -> dict:
        return {"augment_rng": self.augment_rng.get_state()}

    def restore(self, state: dict) -> None:
        if "augment_rng" not in state:
            raise DataError(
                f"the checkpoint was written reading {state.get('loader')}, this run reads memory: "
                "resume with the same --classifier.loader"
            )
        self.augment_rng.set_state(state["augment_rng"])


class StreamBatches:
    """The stream path: `make_loader` batches of step_samples per rank, augmented by the pipeline.

    Order: the fallback follows `data.order.rank_indices` (pad policy) and resumes by skipping to the
    batch; DALI partitions the samples itself (each once per epoch over the ranks, shuffled per epoch with
    a shared seed) and resumes from its own checkpoint of reader and random state, saved with ours.
    Every rank runs ceil(ceil(N / R) / step_samples) steps; where DALI gives a rank an empty last batch
    (N mod R ≠ 0 and its share a multiple of the batch), the rank's previous sample stands in for it, as
    the pad policy repeats a sample, so DDP ranks keep stepping together.
    """

    def __init__(self, source: ShardSource, cfg: ClassifierConfig, *, step_samples: int, micro_batch: int, device):
        self.source, self.cfg, self.step_samples, self.micro_batch, self.device = (
            source, cfg, step_samples, micro_batch, device,
        )  # fmt: skip
        self.num_samples = split_info(source)[0]
        self.steps_per_epoch = math.ceil(math.ceil(self.num_samples / distributed.world_size()) / step_samples)
        self.loader, self._dali_checkpoint, self._last, self._resumed_loader = None, None, None, None

    def _open(self):
        cfg, source = self.cfg, self.source
        return make_loader(
            source.shard_dir,
            batch_size=self.step_samples,
            train=True,
            padding=cfg.crop_padding,
            flip=cfg.horizontal_flip,
            num_workers=source.num_workers,
            rank=distributed.rank(),
            world_size=distributed.world_size(),
            seed=cfg.seed,
            backend=source.backend,
            bad=source.bad,
            dali_checkpoint=self._dali_checkpoint,
        )

    def epoch(self, epoch: int, start_step: int):
        """Yield this rank's micro-batches ((images, labels) pairs) of each step of `epoch` from `start_step` on."""
        restored = self.loader is None and self._dali_checkpoint is not None
        self.loader = self.loader or self._open()
        if self._resumed_loader not in (None, f"stream-{self.loader.backend}"):
            raise DataError(
                f"the checkpoint was written reading {self._resumed_loader}, this run streams with "
                f"{self.loader.backend}: resume with the same --classifier.loader and --classifier.loader-backend"
            )
        if self.loader.backend == "dali":
            if restored and start_step == self.steps_per_epoch:
                return  # a DALI checkpoint taken after an epoch's last batch resumes at the next epoch's first
            # DALI epochs advance in order; a restored pipeline continues where its checkpoint was taken.
            batches = self.loader.epoch(epoch)
        else:
            batches = self.loader.epoch(epoch, start_batch=start_step)
        num_steps = start_step
        for batch in batches:
            images, labels = batch["images"], batch["labels"]
            if len(labels) == 0:
                images, labels = self._last
            self._last = images[-1:].clone(), labels[-1:].clone()
            num_steps += 1
            yield list(zip(images.split(self.micro_batch), labels.split(self.micro_batch), strict=True))
        if num_steps != self.steps_per_epoch:  # e.g. whole shards skipped: ranks would fall out of step
            raise DataError(
                f"{self.source.shard_dir}: rank {distributed.rank()} read {num_steps} batches in epoch {epoch}, "
                f"expected {self.steps_per_epoch}"
            )

    def loss_fn(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(model(images.to(self.device, non_blocking=True)), labels.to(self.device))

    def state(self) -> dict:
        dali = self.loader is not None and self.loader.backend == "dali"
        loader = f"stream-{self.loader.backend}" if self.loader is not None else None
        return {"loader": loader, "dali": self.loader.state() if dali else None, "last_sample": self._last}

    def restore(self, state: dict) -> None:
        self._resumed_loader = state.get("loader", "memory")  # memory checkpoints hold only "augment_rng"
        self._dali_checkpoint, self._last = state.get("dali"), state.get("last_sample")


def training_batches(data: TrainingData, cfg: ClassifierConfig, *, step_samples: int, micro_batch: int, device):
    """MemoryBatches for an ImageSplit, StreamBatches for a ShardSource."""
    kind = MemoryBatches if isinstance(data, ImageSplit) else StreamBatches
    return kind(data, cfg, step_samples=step_samples, micro_batch=micro_batch, device=device)


def evaluation_batches(data: TrainingData, batch_size: int):
    """This rank's disjoint share of a test set as (float images, labels) batches, each sample once."""
    rank, world = distributed.rank(), distributed.world_size()
    if isinstance(data, ImageSplit):
        mine = np.arange(rank, data.labels_N.shape[0], world)
        for start in range(0, mine.shape[0], batch_size):
            batch = mine[start : start + batch_size]
            yield to_model_input(data.images_NHWC[batch]), torch.as_tensor(data.labels_N[batch])
        return
    loader = make_loader(
        data.shard_dir, batch_size=batch_size, train=False, num_workers=data.num_workers, rank=rank,
        world_size=world, backend=data.backend, bad=data.bad,
    )  # fmt: skip
    # The fallback pads ranks to equal counts by repeating samples; a rank's share is range(rank, N, R).
    remaining = len(range(rank, split_info(data)[0], world)) if loader.backend == "pil" else math.inf
    for batch in loader.epoch(0):
        images, labels = batch["images"], batch["labels"]
        if remaining < len(labels):
            images, labels = images[: int(remaining)], labels[: int(remaining)]
        remaining -= len(labels)
        if len(labels):
            yield images, labels
