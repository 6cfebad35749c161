"""What `distgan metrics --real/--fake` accept, resolved into image sets or statistics, with clear errors.

- a shard directory (manifest.json): its images and labels; cacheable (keyed by the manifest's sha256);
- an image `.npz` with `x` (N, H, W, C uint8) and optionally `y` (N,) labels (../shared/data's layout);
- a statistics `.npz` with `mu`, `sigma` (pytorch-fid's layout, or ours): FID only (both sides: their FID);
- a generator checkpoint (`distgan train-gan`'s generator.pt): --fake only; opened through `distgan.generators` and
  sampled on the fly, never written: the set `distgan sample --like ... --knob-value ...` writes with the same seed,
  shard size and batch size (labels and noise seeded as the sweep seeds them, generators/synthetic.py).
"""

from pathlib import Path

import numpy as np

from distgan.data.manifest import manifest_digest, read_manifest
from distgan.data.selection import ShardSelection
from distgan.errors import ConfigError, DataError
from distgan.generators import open_generator
from distgan.generators.synthetic import SyntheticImages, synthetic_labels
from distgan.metrics.engine import ImageSet
from distgan.metrics.extraction import ImageSource
from distgan.metrics.reference_stats import ReferenceStats, is_stats_file, load_stats
from distgan.runtime import distributed
from distgan.runtime.hashing import sha256_of


def load_images_npz(path: Path) -> ImageSet:
    """An `.npz` of uint8 NHWC images `x` and optional labels `y`."""
    with np.load(path, allow_pickle=False) as data:
        if "x" not in data:
            raise DataError(f"{path}: an image .npz needs key 'x' (N, H, W, C uint8); found {sorted(data.files)}")
        images = data["x"]
        labels = data["y"].astype(np.int64) if "y" in data else None
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"{path}: 'x' must be uint8 (N, H, W, C) (got {images.dtype} {images.shape})")
    if labels is not None and labels.shape != (len(images),):
        raise DataError(f"{path}: 'y' has shape {labels.shape}, expected ({len(images)},)")
    return ImageSet(ImageSource.from_array(images, labels), digest=sha256_of(path))


def shard_image_set(shard_dir: Path, num_images: int = 0) -> ImageSet:
    """`num_images` of a shard directory's images spread evenly over it (0: all), keyed by its manifest digest when
    all are used; read and decoded chunk by chunk as the extraction asks for them: memory holds a chunk, not the set."""
    selection = ShardSelection(shard_dir, num_images=num_images)
    digest = manifest_digest(shard_dir) if len(selection) == read_manifest(shard_dir)["num_samples"] else None
    source = ImageSource(len(selection), selection.labels_N, selection.images)
    return ImageSet(source, digest, list(selection.class_names))


def resolve_real(path: Path, flag: str = "--real") -> ImageSet | ReferenceStats:
    """Shards, image .npz or statistics .npz."""
    path = Path(path)
    if path.is_dir():
        return shard_image_set(path)
    if not path.is_file():
        raise DataError(f"{flag} {path}: no such file or shard directory")
    if path.suffix != ".npz":
        raise DataError(f"{flag} {path}: expected a shard directory or an .npz (images or mu/sigma statistics)")
    return load_stats(path) if is_stats_file(path) else load_images_npz(path)


def resolve_fake(path: Path, *, like: Path | None, knob_value: float, truncation_factor: float, seed: int,
                 sample_batch_size: int, shard_size: int) -> ImageSet | ReferenceStats:  # fmt: skip
    """Shards, image .npz, statistics .npz, or a generator checkpoint sampled on the fly at `knob_value` (τ) in the
    class counts of `like`'s shards, as `distgan sample` would write it with the same seed, batch and shard sizes."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".npz":
        return resolve_real(path, "--fake")  # statistics too: two statistics files give their FID
    if not path.is_file():
        raise DataError(f"--fake {path}: no such file or shard directory")
    if like is None:
        raise ConfigError(f"--fake {path}: a generator needs labels to sample; pass --like REAL_SHARDS")
    manifest = read_manifest(like)
    class_names = list(manifest["class_names"])
    try:
        loaded = open_generator("distgan", weights=path, num_classes=len(class_names),
                                device=distributed.select_device(), truncation_factor=truncation_factor)  # fmt: skip
    except ConfigError:  # the file is a generator, but not for these classes: the error says so
        raise
    except Exception as err:  # any unreadable checkpoint: name the file
        raise DataError(f"--fake {path}: not a generator checkpoint from `distgan train-gan` ({err})") from err
    labels_N = synthetic_labels(manifest["class_counts"], seed)
    images = SyntheticImages(loaded, labels_N, knob_value, seed=seed, shard_size=shard_size,
                             batch_size=sample_batch_size)  # fmt: skip
    return ImageSet(ImageSource(len(labels_N), labels_N, images), digest=None, class_names=class_names)
