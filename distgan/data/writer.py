"""Shard writer: labelled images → WebDataset tar shards + DALI index files + manifest.json.

Each sample `{key}` is three tar members:
    {key}.png or {key}.jpg   the image (PNG lossless, or JPEG at `jpeg_quality`)
    {key}.cls                the class index as ASCII (what webdataset readers expect)
    {key}.lbl                the class index as a 4-byte little-endian int32 (DALI cannot parse `.cls`)
Beside each `shard-NNNNNN.tar` lies `shard-NNNNNN.idx`, the index DALI's `wds2idx` writes (sample → member
offsets), so neither DALI nor the fallback loader scans a tar at start-up. The tars are written by
webdataset's `TarWriter`; the sink here cuts them into shards (webdataset's `ShardWriter` checks its byte limit
after a sample, on member data only, so a shard could pass `max_bytes_per_shard`) and writes index and digests.

Keys are stable: the sample's position in its source (`{index:08d}`), so the same source, options and
limits give byte-identical shards. With `shuffle_seed` set (real shards: `distgan prepare` and the sweep, seed 0 by
default) samples are written in `manifest.shuffled_order`, recorded as the manifest's "order": the key still names
the source index. `labels.npy` (every label in set order) lets label scans skip the shards, and `verified.json`
records the digests computed while writing (data/verify.py), so no reader hashes a freshly published set.
Encoding runs in a process pool in chunks (`num_workers`); the tar writing is sequential and streaming, so memory
stays bounded for ImageNet-sized image-folder trees. The index format lives in data/tarindex.py.
"""

import io
import os
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from distgan.config import DataConfig
from distgan.data.manifest import (
    FORMAT_VERSION,
    IMAGE_EXTENSIONS,
    LABELS_NAME,
    MANIFEST_NAME,
    order_record,
    read_manifest,
    shuffled_order,
)
from distgan.data.tarindex import write_index
from distgan.data.verify import VERIFIED_NAME, published_record
from distgan.errors import ConfigError, DataError
from distgan.runtime.atomic import atomic_path, temporary_path, write_json_atomic
from distgan.runtime.hashing import sha256_of

LABEL_INT32_EXT = "lbl"
_TAR_BLOCK = 512


@dataclass(kw_only=True, frozen=True)
class ShardOptions:
    """How samples are encoded and cut into shards."""

    image_format: str = "png"  # "png" (lossless) or "jpeg"
    jpeg_quality: int = 95  # libjpeg quality for image_format "jpeg"
    max_samples_per_shard: int = 2000  # a shard closes when it holds this many samples ...
    max_bytes_per_shard: int = 1 << 30  # ... or when the next sample would take it past this many tar bytes
    num_workers: int = 1  # encoding processes; 1 encodes in this process
    chunk_size: int = 256  # samples per encoding task
    shuffle_seed: int | None = None  # write in a seeded permutation (real shards: 0); None: in source order

    def __post_init__(self) -> None:
        if self.image_format not in IMAGE_EXTENSIONS:
            raise ConfigError(f"--image-format must be one of {sorted(IMAGE_EXTENSIONS)} (got {self.image_format!r})")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"--jpeg-quality must be in [1, 100] (got {self.jpeg_quality})")
        for name in ("max_samples_per_shard", "max_bytes_per_shard", "num_workers", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be ≥ 1 (got {getattr(self, name)})")


def real_shard_options(data: DataConfig, *, num_workers: int = 1) -> ShardOptions:
    """The options of a sweep's real shards, as `--data.*` says (format, quality, shard size, shuffle seed)."""
    return ShardOptions(
        image_format=data.image_format,
        jpeg_quality=data.jpeg_quality,
        max_samples_per_shard=data.shard_max_samples,
        shuffle_seed=data.shuffle_seed,
        num_workers=num_workers,
    )


def encode_image(image_HWC: np.ndarray, image_format: str, jpeg_quality: int) -> bytes:
    """uint8 (H, W, C) → PNG or JPEG bytes (grey stays one channel)."""
    pil = Image.fromarray(image_HWC[:, :, 0] if image_HWC.shape[2] == 1 else image_HWC)
    buffer = io.BytesIO()
    if image_format == "png":
        pil.save(buffer, format="PNG")
    else:  # 4:4:4 chroma: small images lose too much colour with the default 4:2:0 subsampling
        pil.save(buffer, format="JPEG", quality=jpeg_quality, subsampling=0)
    return buffer.getvalue()


def encode_array_chunk(task) -> list[bytes]:
    """(uint8 images (N, H, W, C), image_format, jpeg_quality) → N encoded images: a picklable pool task."""
    images_NHWC, image_format, jpeg_quality = task
    return [encode_image(image, image_format, jpeg_quality) for image in images_NHWC]


def encode_file_chunk(task) -> list[bytes]:
    """Image files → encoded bytes; a JPEG kept at its size passes through untouched (no re-encode loss)."""
    files, mode, image_size, image_format, jpeg_quality = task
    out = []
    for file in files:
        try:
            with Image.open(file) as pil:
                if image_size is None and image_format == "jpeg" and pil.format == "JPEG" and pil.mode == mode:
                    out.append(Path(file).read_bytes())
                    continue
                pil = pil.convert(mode)
                if image_size is not None:
                    pil = pil.resize((image_size, image_size), Image.BILINEAR)
                out.append(encode_image(np.asarray(pil).reshape(pil.height, pil.width, -1), image_format, jpeg_quality))
        except OSError as err:
            raise DataError(f"{file}: not a readable image ({err})") from None
    return out


def encoded_chunks(tasks: Iterable, encode, num_workers: int) -> Iterator[list[bytes]]:
    if num_workers == 1:
        yield from map(encode, tasks)
        return
    # Ordered map: output order (hence keys and bytes) does not depend on the number of workers.
    with ProcessPoolExecutor(num_workers) as pool:
        yield from pool.map(encode, tasks)


def _tar_bytes(sizes: Iterable[int]) -> int:
    return sum(_TAR_BLOCK + -(-size // _TAR_BLOCK) * _TAR_BLOCK for size in sizes)


def shard_name(index: int) -> str:
    """The file name of the index-th shard of a directory."""
    return f"shard-{index:06d}.tar"


def sample_members(ext: str, image_bytes: bytes, label: int) -> list[tuple[str, bytes]]:
    """A sample's tar members after its key, as (extension, bytes): the image, its ASCII and its int32 label."""
    return [
        (ext, image_bytes),
        ("cls", str(label).encode()),
        (LABEL_INT32_EXT, np.int32(label).astype("<i4").tobytes()),
    ]


def open_tar_writer(file) -> wds.TarWriter:
    """A byte-stable TarWriter on an open binary file: mtime 0, no owner names, mode 0444 in every header (USTAR,
    TarWriter's default). A file object, not a path: TarWriter gives a path to gopen, which reads "x:..." as a URL
    scheme."""
    return wds.TarWriter(file, user="", group="", mode=0o444, mtime=0)


def write_members(tar: wds.TarWriter, key: str, members: list[tuple[str, bytes]]) -> None:
    # One write per member: TarWriter sorts a sample's entries by extension (cls, lbl, png); written one
    # by one they keep the image-first order of the shards written before it did the writing, so the same
    # source still gives the same bytes and manifest digest (trained GANs and statistics are cached by it).
    for ext, data in members:
        tar.write({"__key__": key, ext: data})


def finish_shard(path: Path, *, num_samples: int) -> dict:
    """Index a closed shard tar (`write_index`) and return its manifest entry, less `name` and `first_key`."""
    index = write_index(path)
    return {
        "num_samples": num_samples,
        "num_bytes": path.stat().st_size,
        "sha256": sha256_of(path),
        "index": index.name,
        "index_sha256": sha256_of(index),
    }


def write_shard_file(path: Path, samples: list[tuple[str, bytes, int]], *, image_format: str) -> dict:
    """One shard of (key, encoded image, label) samples at `path`, written under a temporary name and renamed, then
    its index; returns its manifest entry. Same bytes as the shard `write_sample_stream` makes of the same samples."""
    ext = IMAGE_EXTENSIONS[image_format]
    with atomic_path(path, suffix=".tar") as tmp, open(tmp, "wb") as file:
        tar = open_tar_writer(file)
        for key, image_bytes, label in samples:
            write_members(tar, key, sample_members(ext, image_bytes, label))
        tar.close()
    return {"name": path.name, "first_key": samples[0][0]} | finish_shard(path, num_samples=len(samples))


def build_manifest(
    *,
    shards: list[dict],
    class_names: tuple[str, ...],
    class_counts: list[int],
    image_shape_HWC: tuple[int, int, int] | None,
    image_format: str,
    jpeg_quality: int,
    provenance: dict,
    order: dict | None = None,
    labels: dict | None = None,
) -> dict:
    """The manifest.json of a shard directory whose shards' entries are `shards` (in order); `order` says how
    positions map to source indices (`manifest.order_record`), `labels` names the labels file and its sha256."""
    extra = ({"order": order} if order is not None else {}) | ({"labels": labels} if labels is not None else {})
    return extra | {
        "format_version": FORMAT_VERSION,
        "num_samples": int(sum(class_counts)),
        "image_shape_HWC": None if image_shape_HWC is None else list(image_shape_HWC),
        "image_format": image_format,
        "jpeg_quality": jpeg_quality if image_format == "jpeg" else None,
        "class_names": list(class_names),
        "class_counts": list(class_counts),
        "shards": shards,
        "provenance": provenance,
    }


class _ShardSink:
    """Appends samples to shard-NNNNNN.tar files in a directory, closing one when a limit is reached."""

    def __init__(self, directory: Path, options: ShardOptions, num_classes: int):
        self.directory, self.options = directory, options
        self.ext = IMAGE_EXTENSIONS[options.image_format]
        self.shards: list[dict] = []
        self.class_counts = np.zeros(num_classes, np.int64)
        self.labels: list[int] = []
        self.tar, self.file, self.num_in_shard, self.bytes_in_shard = None, None, 0, 0

    def add(self, key: str, image_bytes: bytes, label: int) -> None:
        members = sample_members(self.ext, image_bytes, label)
        size = _tar_bytes(len(data) for _, data in members)
        full = self.num_in_shard >= self.options.max_samples_per_shard
        if self.tar is not None and (full or self.bytes_in_shard + size > self.options.max_bytes_per_shard):
            self._close()
        if self.tar is None:
            name = shard_name(len(self.shards))
            self.file = open(self.directory / name, "wb")  # noqa: SIM115 (closed in _close)
            self.tar = open_tar_writer(self.file)
            self.shards.append({"name": name, "first_key": key})
        write_members(self.tar, key, members)
        self.num_in_shard += 1
        self.bytes_in_shard += size
        self.class_counts[label] += 1
        self.labels.append(label)

    def _close(self) -> None:
        self.tar.close()
        self.file.close()
        shard = self.shards[-1]
        shard |= finish_shard(self.directory / shard["name"], num_samples=self.num_in_shard)
        self.tar, self.num_in_shard, self.bytes_in_shard = None, 0, 0

    def finish(self) -> None:
        if self.tar is not None:
            self._close()


def write_sample_stream(
    encoded: Iterable[tuple[str, bytes, int]],
    out_dir: Path,
    *,
    options: ShardOptions,
    class_names: tuple[str, ...],
    image_shape_HWC: tuple[int, int, int] | None,
    provenance: dict,
    order: dict | None = None,
    progress=None,
) -> dict:
    """Write (key, encoded image, label) samples as a shard directory; returns the manifest.

    The directory appears whole or not at all (written under a temporary name, then renamed); if
    out_dir already exists (another process finished first) it is kept and its manifest returned.
    """
    out_dir = Path(out_dir)
    tmp_dir = temporary_path(out_dir)
    tmp_dir.mkdir(parents=True)
    try:
        sink = _ShardSink(tmp_dir, options, len(class_names))
        for key, image_bytes, label in encoded:
            if not 0 <= label < len(class_names):
                raise DataError(f"key {key}: label {label} outside [0, {len(class_names)})")
            sink.add(key, image_bytes, label)
            if progress is not None:
                progress.update(1)
        sink.finish()
        with atomic_path(tmp_dir / LABELS_NAME, suffix=".npy") as tmp:
            np.save(tmp, np.asarray(sink.labels, np.int32))
        manifest = build_manifest(
            shards=sink.shards,
            class_names=class_names,
            class_counts=sink.class_counts.tolist(),
            image_shape_HWC=image_shape_HWC,
            image_format=options.image_format,
            jpeg_quality=options.jpeg_quality,
            provenance=provenance,
            order=order,
            labels={"name": LABELS_NAME, "sha256": sha256_of(tmp_dir / LABELS_NAME)},
        )
        write_json_atomic(tmp_dir / MANIFEST_NAME, manifest)
        # Publication: the digests were computed from the bytes just written; readers trust them (data/verify.py).
        write_json_atomic(tmp_dir / VERIFIED_NAME, published_record(tmp_dir, manifest))
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    try:
        os.replace(tmp_dir, out_dir)
    except OSError:  # out_dir exists and is not empty: a concurrent writer won; its content is equivalent
        shutil.rmtree(tmp_dir, ignore_errors=True)
        return read_manifest(out_dir)
    return manifest


def write_array_shards(split, out_dir: Path, *, options: ShardOptions, provenance: dict, progress=None) -> dict:
    """An in-memory ImageSplit (any source, or generator samples) → shard directory; returns the manifest."""
    images, labels = split.images_NHWC, split.labels_N
    seed = options.shuffle_seed
    order = np.arange(len(images)) if seed is None else shuffled_order(len(images), seed)
    step = options.chunk_size
    tasks = (
        (images[order[i : i + step]], options.image_format, options.jpeg_quality) for i in range(0, len(images), step)
    )
    chunks = encoded_chunks(tasks, encode_array_chunk, options.num_workers)
    encoded = (
        (f"{order[i]:08d}", data, int(labels[order[i]])) for i, data in enumerate(b for chunk in chunks for b in chunk)
    )
    return write_sample_stream(
        encoded,
        out_dir,
        options=options,
        class_names=split.class_names,
        image_shape_HWC=tuple(images.shape[1:]),
        provenance=provenance,
        order=order_record(seed),
        progress=progress,
    )
