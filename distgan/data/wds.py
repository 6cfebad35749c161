"""The fallback input pipeline: the webdataset library reading shards in distgan's exact distributed order.

    wds.WebLoader(batch_size=None, num_workers=W)   persistent worker processes; batches come back in order
      ShardSamples, a wds.DataPipeline of three stages:
        _epoch_batches       this rank's share of the epoch's global order (`order.rank_indices`: one seeded
                             permutation shared by all ranks, padded or cut to R, strided by rank), cut into
                             batches from `start_batch` on (a resume skips batches, it does not replay them)
        wds.split_by_worker  worker w of W takes batches w, w + W, ...; torch asks the workers round robin,
                             so the loader yields the batches in the order's order
        _load_batches        each sample's members read through the shard's `.idx` (offset and size of each
                             member) into webdataset's sample dict {"__key__", "__url__", ext: bytes},
                             decoded by webdataset's Decoder (`imagehandler` "rgb8"/"l8"/"rgba8" for the
                             image, its basic handler for `.cls` → int), augmented, collated as uint8

Why the order is not webdataset's streaming one (WebDataset(urls) → split_by_node → split_by_worker →
shuffle(buffer)): that splits whole shards between ranks and workers and shuffles within a buffer, so ranks
get unequal sample counts (DDP needs equal step counts) and the order is not the global permutation that
makes the fallback equal to the memory path's order and lets a resume skip to a batch. The node split is
`rank_indices`, not `wds.split_by_node`, because that one reads the rank from the environment or the
process group, while a loader is told its rank (and the split is of samples, not shards).
Why members are read by offset and not through webdataset's tar iterator: parsing a one-sample tar cut out
by the index costs ~150 µs per sample here, two to three times a 32×32 PNG decode; the `.idx` already holds
what the tar headers say, and a seek and read takes ~3 µs. The sequential readers (`shards.iterate_tar`:
`read_shards`, the overlap check) do use webdataset's tar iterator.
webdataset's worker split reads the worker from the WORKER and NUM_WORKERS variables when both are set,
else from torch: leave them unset in a launcher's environment.
"""

import io
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image

from distgan.data.manifest import image_extension, read_manifest
from distgan.data.order import rank_indices
from distgan.data.tarindex import INDEX_VERSION, tar_index_lines
from distgan.errors import DataError

IMAGE_SPECS = {1: "l8", 3: "rgb8", 4: "rgba8"}  # channels → webdataset imagehandler spec (numpy uint8)


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


class ShardSamples(wds.DataPipeline):
    """This rank's batches of a shard directory, epoch by epoch, as a webdataset pipeline (see the module doc).

    Yields {"images": uint8 (B, C, H, W), "labels": int64 (B,), "indices": int64 (B,), "skipped": [reason]};
    a damaged sample is left out of its batch and its reason (naming shard and key) travels with the batch,
    so the main process applies the --on-bad-sample policy. Set `position` (epoch, start batch) before
    iterating.
    """

    def __init__(
        self, shard_dir: Path, *, shards: list[dict], train: bool, image_size: int | None, padding: int, flip: bool,
        batch_size: int, rank: int, world_size: int, seed: int, last: str, shuffle: bool,
    ):  # fmt: skip
        super().__init__(self._epoch_batches, wds.split_by_worker, self._load_batches)
        self.shard_dir, manifest = Path(shard_dir), read_manifest(shard_dir)
        self.train, self.image_size, self.padding, self.flip = train, image_size, padding, flip
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.last, self.shuffle = seed, last, shuffle
        self.ext, self.shape_HWC = image_extension(manifest), manifest["image_shape_HWC"]
        self.samples = [(shard["name"], key, e) for shard in shards for key, e in read_index(shard_dir, shard)]
        expected = sum(shard["num_samples"] for shard in shards)
        if len(self.samples) != expected:
            raise DataError(f"{shard_dir}: index files list {len(self.samples)} samples, manifest says {expected}")
        channels = self.shape_HWC[2] if self.shape_HWC is not None else self._first_image_channels()
        self.decoder = wds.autodecode.Decoder([wds.imagehandler(IMAGE_SPECS.get(channels, "rgb8"))])
        # (epoch, start batch) of the next pass, in shared memory: persistent workers hold copies of this
        # object made when they started, and read it each time the loader starts them on a new pass.
        self.position = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._files = {}

    @property
    def num_samples(self) -> int:
        return len(self.samples)

    def _first_image_channels(self) -> int:
        """Channels of the first image (a varying-size set: its writer gives all images one mode)."""
        name, _, entries = self.samples[0]
        offset, size = entries[self.ext]
        with open(self.shard_dir / name, "rb") as handle:  # not self._files: forked workers would share offsets
            handle.seek(offset)
            with Image.open(io.BytesIO(handle.read(size))) as pil:
                return len(pil.getbands())

    def _member(self, name: str, offset: int, size: int) -> bytes:
        if name not in self._files:  # opened lazily: each worker process gets its own handles
            self._files[name] = open(self.shard_dir / name, "rb")  # noqa: SIM115 (kept open for the worker's life)
        handle = self._files[name]
        handle.seek(offset)
        return handle.read(size)

    def _epoch_batches(self):
        epoch, start_batch = self.position.tolist()
        order = rank_indices(
            self.num_samples, epoch=epoch, seed=self.seed, rank=self.rank, world_size=self.world_size,
            last=self.last, shuffle=self.shuffle,
        )  # fmt: skip
        for start in range(start_batch * self.batch_size, len(order), self.batch_size):
            yield epoch, order[start : start + self.batch_size]

    def _load_batches(self, batches):
        for epoch, indices in batches:
            images, labels, kept, skipped = [], [], [], []
            for index in indices.tolist():
                loaded = self.load(epoch, index)
                if isinstance(loaded, str):
                    skipped.append(loaded)
                    continue
                images.append(loaded[0])
                labels.append(loaded[1])
                kept.append(index)
            batch = {"skipped": skipped}
            if kept:  # uint8 through the worker → main process queue (4× less than float32); normalised per batch
                images_NCHW = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
                batch |= {
                    "images": torch.from_numpy(images_NCHW),
                    "labels": torch.tensor(labels, dtype=torch.int64),
                    "indices": torch.tensor(kept, dtype=torch.int64),
                }
            yield batch

    def read(self, index: int) -> dict | str:
        """Sample `index` as webdataset's sample dict of undecoded members, or why it cannot be read."""
        name, key, entries = self.samples[index]
        path = self.shard_dir / name
        sample = {"__key__": key, "__url__": str(path)}
        for ext in (self.ext, "cls"):
            if ext not in entries:
                return f"{path} key {key}: missing {ext} entry"
            sample[ext] = self._member(name, *entries[ext])
            if len(sample[ext]) != entries[ext][1]:
                return f"{path} key {key}: unreadable tar ({ext} entry ends after {len(sample[ext])} bytes)"
        return sample

    def decode(self, sample: dict) -> tuple[np.ndarray, int] | str:
        """(uint8 HWC image, label) from a sample dict by webdataset's Decoder, or why it cannot be decoded."""
        path, key = sample["__url__"], sample["__key__"]
        try:
            decoded = self.decoder(sample)
        except wds.DecodingError as err:  # webdataset names the member (err.k); the cause is PIL's or int()'s
            if err.k == "cls":
                return f"{path} key {key}: label {sample['cls'][:20]!r} is not an integer"
            return f"{path} key {key}: {self.ext.upper()} cannot be decoded ({err.__cause__})"
        image = decoded[self.ext]
        image = image.reshape(*image.shape[:2], -1)
        if self.shape_HWC is not None and image.shape != tuple(self.shape_HWC):
            return f"{path} key {key}: image shape {image.shape}, manifest says {tuple(self.shape_HWC)}"
        return image, decoded["cls"]

    def load(self, epoch: int, index: int) -> tuple[np.ndarray, int] | str:
        """Sample `index` read, decoded and transformed as drawn in `epoch`, or a skip reason."""
        sample = self.read(index)
        decoded = sample if isinstance(sample, str) else self.decode(sample)
        if isinstance(decoded, str):
            return decoded
        image, label = decoded
        if self.train:
            # Seeded by (seed, epoch, index): the draws do not depend on ranks, workers or batch size.
            rng = np.random.default_rng([self.seed, epoch, index])
            image = augment(image, padding=self.padding, flip=self.flip, rng=rng)
        elif self.image_size is not None and image.shape[:2] != (self.image_size, self.image_size):
            pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
            image = np.asarray(pil.resize((self.image_size, self.image_size), Image.BILINEAR)).reshape(
                self.image_size, self.image_size, -1
            )
        return image, label


class PilLoader:
    """The fallback loader: a wds.WebLoader (W persistent worker processes) over ShardSamples."""

    backend = "pil"

    def __init__(self, samples: ShardSamples, *, num_workers: int, bad):
        self.samples, self.bad = samples, bad
        # Persistent workers: started once, not per epoch (start-up dominated short epochs). in_order: batch k
        # comes back k-th whichever worker finishes first (the order is part of the semantics).
        self.loader = wds.WebLoader(
            samples, batch_size=None, num_workers=num_workers, persistent_workers=num_workers > 0, in_order=True
        )

    def epoch(self, epoch: int, start_batch: int = 0):
        """Yield this rank's batches of `epoch` from batch `start_batch` on (a resume mid-epoch); skipped
        samples are added to `self.bad`. The order and the augmentation draws do not depend on where it starts."""
        self.samples.position.copy_(torch.tensor([epoch, start_batch]))
        for batch in self.loader:
            for reason in batch["skipped"]:
                self.bad.handle(reason)
            if "images" in batch:
                batch["images"] = batch["images"].float().div_(127.5).sub_(1.0)
                yield batch
