"""WebDataset shards of labelled images with a manifest: per-class counts and a sha256 per shard.

Layout of a shard directory:
    manifest.json                 what is inside, digests, and who made it (source, τ, seed, ...)
    shard-000000.tar ...          samples {key}.png|jpg, {key}.cls (ASCII class), {key}.lbl (int32 class)
    shard-000000.idx ...          DALI wds2idx index of each tar (format_version ≥ 2; see writer.py)
A directory appears whole or not at all: it is written under a temporary name and renamed.
`read_shards` reads each tar in sequence through webdataset's tar iterator (`iterate_tar`); given a rank of a
world, only that rank's contiguous share of the samples, by offset through the index files (the GAN job: each rank
its own bytes). Digests are verified once per set and recorded (data/verify.py); `read_labels` reads the labels file.
"""

import io
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image
from webdataset.tariterators import group_by_keys, tar_file_expander

from distgan.data.manifest import MANIFEST_NAME, image_extension, read_manifest
from distgan.data.sources import ImageSplit
from distgan.data.verify import bad_reason, ensure_verified
from distgan.data.wds import read_index
from distgan.data.writer import LABEL_INT32_EXT, ShardOptions, write_array_shards
from distgan.errors import ConfigError, DataError

ON_BAD_SAMPLE = ("error", "skip")
_log = logging.getLogger(__name__)


def write_shards(
    split: ImageSplit,
    out_dir: Path,
    *,
    max_samples_per_shard: int,
    provenance: dict,
    options: ShardOptions | None = None,
) -> dict:
    """Write `split` as WebDataset shards (+ index files, manifest) into out_dir; returns the manifest.

    `options` (format, byte limit, workers) defaults to lossless PNG; max_samples_per_shard overrides it.
    If out_dir already exists (another process finished first), it is kept and returned.
    """
    options = replace(options or ShardOptions(), max_samples_per_shard=max_samples_per_shard)
    return write_array_shards(split, Path(out_dir), options=options, provenance=provenance)


@dataclass
class BadSamples:
    """What `--on-bad-sample skip` left out: a count and the first reasons (each names shard and key)."""

    policy: str = "error"
    num_skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    quiet: bool = False  # no log line (a loader worker's counter: the main process logs what it hands back)

    def __post_init__(self) -> None:
        if self.policy not in ON_BAD_SAMPLE:
            raise ConfigError(f"--on-bad-sample must be one of {ON_BAD_SAMPLE} (got {self.policy!r})")

    def handle(self, reason: str, count: int = 1) -> None:
        """Raise DataError(reason) under policy "error"; else count `count` skipped samples and log why."""
        if self.policy == "error":
            raise DataError(reason)
        self.num_skipped += count
        if len(self.reasons) < 20:  # enough to diagnose; a bad dataset must not flood result.json
            self.reasons.append(reason)
        if not self.quiet:
            _log.warning("skipped %d sample(s): %s", count, reason)

    def as_dict(self) -> dict:
        """For result.json: {"on_bad_sample", "num_skipped_samples", "skip_reasons"}."""
        return {"on_bad_sample": self.policy, "num_skipped_samples": self.num_skipped, "skip_reasons": self.reasons}


def read_shards(
    shard_dir: Path, *, verify: bool = True, bad: BadSamples | None = None, rank: int = 0, world_size: int = 1
) -> ImageSplit:
    """Load the samples of a shard directory into memory (rank r of R: only its share, `rank_share`), its shards'
    digests verified once (data/verify.py: a valid record is trusted).

    Damaged data raises DataError naming the shard and key; with `bad=BadSamples("skip")` the damaged
    samples (a whole shard on a digest mismatch) are left out and counted in `bad`.
    """
    bad = bad or BadSamples()
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    if manifest["image_shape_HWC"] is None:
        raise DataError(f"{shard_dir}: images of varying size cannot be loaded into memory; reshard with a resize")
    record = ensure_verified(shard_dir) if verify else {"bad": {}}
    if world_size > 1:
        return _read_share(shard_dir, manifest, record, rank=rank, world_size=world_size, bad=bad)
    height, width, channels = manifest["image_shape_HWC"]
    ext = image_extension(manifest)
    images = np.empty((manifest["num_samples"], height, width, channels), np.uint8)
    labels = np.empty((manifest["num_samples"],), np.int64)
    filled = 0
    for shard in manifest["shards"]:
        path = shard_dir / shard["name"]
        if not path.is_file():
            raise DataError(f"{path}: shard listed in {MANIFEST_NAME} is missing")
        if (reason := bad_reason(shard_dir, shard["name"], record, with_index=False)) is not None:
            bad.handle(reason, shard["num_samples"])
            continue
        seen = 0
        try:
            for key, entries in iterate_tar(path):
                seen += 1
                sample = decode_sample(entries, path, key, ext, (height, width, channels), bad)
                if sample is None:
                    continue
                if filled >= images.shape[0]:
                    raise DataError(f"{path}: more samples than the manifest's {manifest['num_samples']}")
                images[filled], labels[filled] = sample
                filled += 1
        except DataError as err:
            if "unreadable tar" not in str(err):
                raise
            bad.handle(str(err), max(shard["num_samples"] - seen, 1))
            continue
        if seen != shard["num_samples"]:
            raise DataError(f"{path}: {seen} samples, manifest says {shard['num_samples']}")
    return ImageSplit(images_NHWC=images[:filled], labels_N=labels[:filled], class_names=tuple(manifest["class_names"]))


def rank_share(num_samples: int, rank: int, world_size: int) -> range:
    """The contiguous positions rank r of R reads, as DALI's reader splits a set (sizes differ by at most one).
    Contiguous is a fair share because real shards are written in a shuffled order (writer.py)."""
    assert 0 <= rank < world_size, (rank, world_size)
    return range(num_samples * rank // world_size, num_samples * (rank + 1) // world_size)


def _read_share(shard_dir: Path, manifest: dict, record: dict, *, rank: int, world_size: int, bad: BadSamples):
    """`read_shards` for one rank: the samples of `rank_share`, each read by offset through its shard's index (only
    the shards that hold them are opened; only their image and label members are read)."""
    share = rank_share(manifest["num_samples"], rank, world_size)
    shape_HWC, ext = tuple(manifest["image_shape_HWC"]), image_extension(manifest)
    images = np.empty((len(share), *shape_HWC), np.uint8)
    labels = np.empty((len(share),), np.int64)
    filled, start = 0, 0
    for shard in manifest["shards"]:
        first, stop = max(start, share.start), min(start + shard["num_samples"], share.stop)
        begin, start = start, start + shard["num_samples"]
        if first >= stop:
            continue
        path = shard_dir / shard["name"]
        if not path.is_file():
            raise DataError(f"{path}: shard listed in {MANIFEST_NAME} is missing")
        if (reason := bad_reason(shard_dir, shard["name"], record)) is not None:
            bad.handle(reason, stop - first)
            continue
        index = read_index(shard_dir, shard)
        with open(path, "rb") as handle:
            for key, members in index[first - begin : stop - begin]:
                entries = {}
                for name in (ext, "cls"):
                    if name in members:
                        handle.seek(members[name][0])
                        entries[name] = handle.read(members[name][1])
                sample = decode_sample(entries, path, key, ext, shape_HWC, bad)
                if sample is not None:
                    images[filled], labels[filled] = sample
                    filled += 1
    return ImageSplit(images_NHWC=images[:filled], labels_N=labels[:filled], class_names=tuple(manifest["class_names"]))


def read_labels(shard_dir: Path) -> np.ndarray:
    """int64 label of every sample in set order: from the labels file the writer keeps beside the manifest (one read),
    else (sets written before it, or by the sampler) from each sample's 4-byte `.lbl` member found by the index."""
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    if "labels" in manifest:
        path = shard_dir / manifest["labels"]["name"]
        try:
            labels = np.load(path, allow_pickle=False).astype(np.int64)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: unreadable labels file ({err})") from None
        counts = np.bincount(labels, minlength=len(manifest["class_names"])).tolist() if labels.size else []
        if labels.shape != (manifest["num_samples"],) or counts != list(manifest.get("class_counts", counts)):
            raise DataError(f"{path}: labels disagree with {MANIFEST_NAME}'s num_samples or class_counts")
        return labels
    labels = []
    for shard in manifest["shards"]:
        with open(shard_dir / shard["name"], "rb") as handle:
            for key, members in read_index(shard_dir, shard):
                name = LABEL_INT32_EXT if LABEL_INT32_EXT in members else "cls"
                if name not in members:
                    raise DataError(f"{shard_dir / shard['name']} key {key}: missing cls entry")
                handle.seek(members[name][0])
                data = handle.read(members[name][1])
                labels.append(int(np.frombuffer(data, "<i4")[0]) if name == LABEL_INT32_EXT else int(data))
    return np.asarray(labels, np.int64)


def usable_shards(shard_dir: Path, manifest: dict, *, verify: bool, bad: BadSamples) -> list[dict]:
    """The manifest's shards that exist and (if verify) match their sha256 and index sha256, as the set's
    verification record says (data/verify.py: hashed once per set, then trusted while the files are unchanged).

    A missing shard is always an error; a digest mismatch is an error, or under "skip" the shard is left
    out and its samples counted. Used by the streaming loaders, which do not re-read shards per epoch.
    """
    record = ensure_verified(shard_dir) if verify else {"bad": {}}
    usable = []
    for shard in manifest["shards"]:
        path = Path(shard_dir) / shard["name"]
        if not path.is_file():
            raise DataError(f"{path}: shard listed in {MANIFEST_NAME} is missing")
        if (reason := bad_reason(shard_dir, shard["name"], record)) is not None:
            bad.handle(reason, shard["num_samples"])
        else:
            usable.append(shard)
    return usable


def iterate_tar(path: Path):
    """(key, {ext: bytes}) per sample of a WebDataset tar, in order, read by webdataset's tar iterator
    (`tar_file_expander` → `group_by_keys`); refuses member paths that escape.

    A truncated or corrupt archive raises DataError("<path>: unreadable tar ...") naming the last key read.
    """
    errors, escaping = [], []

    def stop(exn: Exception) -> bool:  # webdataset's handler protocol: False ends the iteration
        errors.append(exn)
        return False

    def check(name: str) -> bool:  # webdataset's select_files hook: sees every regular member's name
        if name.startswith("/") or ".." in Path(name).parts:
            escaping.append(name)
        return True

    key = None
    try:
        with open(path, "rb") as stream:
            files = tar_file_expander([{"url": str(path), "stream": stream}], handler=stop, select_files=check)
            for sample in group_by_keys(files, handler=stop):
                if escaping or errors:  # after an error webdataset hands on the sample it cut short: not yielded
                    break
                key = sample["__key__"]
                yield key, {ext: data for ext, data in sample.items() if not ext.startswith("__")}
    except OSError as err:
        raise DataError(f"{path}: unreadable tar after key {key} ({type(err).__name__}: {err})") from None
    if escaping:
        raise DataError(f"{path}: member {escaping[0]!r} escapes the shard (absolute path or '..')")
    if errors:
        message = str(errors[0].args[0]).partition(" @ ")[0] if errors[0].args else ""  # webdataset adds " @ file"
        raise DataError(f"{path}: unreadable tar after key {key} ({type(errors[0]).__name__}: {message})")


def decode_sample(entries: dict, path: Path, key: str, ext: str, shape_HWC, bad: BadSamples):
    """(uint8 HWC image, int label) from a sample's members, or None if `bad` skipped it."""
    if ext not in entries or "cls" not in entries:
        bad.handle(f"{path} key {key}: missing {ext if ext not in entries else 'cls'} entry")
        return None
    try:
        label = int(entries["cls"])
    except ValueError:
        bad.handle(f"{path} key {key}: label {entries['cls'][:20]!r} is not an integer")
        return None
    try:
        with Image.open(io.BytesIO(entries[ext])) as pil:
            image = np.asarray(pil)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        bad.handle(f"{path} key {key}: {ext.upper()} cannot be decoded ({err})")
        return None
    image = image.reshape(*image.shape[:2], -1)
    if shape_HWC is not None and image.shape != tuple(shape_HWC):
        bad.handle(f"{path} key {key}: image shape {image.shape}, manifest says {tuple(shape_HWC)}")
        return None
    return image, label
