"""NVIDIA DALI input pipeline over WebDataset shards (the fast path of `loader.make_loader`).

fn.readers.webdataset (index files from the writer: no tar scan at start-up; the image and the int32
`.lbl` label, since DALI cannot parse the ASCII `.cls`) → fn.decoders.image ("mixed" on a GPU, "cpu"
with device_id=None without one) → training: pad with black + random crop back + random flip, or
evaluation: resize → normalise x/127.5 − 1 to CHW → DALIGenericIterator with reader_name, so an
epoch ends where the reader's shard ends.

Order: shard s = rank of R ranks reads a contiguous 1/R of the samples; with shuffling on,
`shuffle_after_epoch` reorders whole tars between epochs with a seed shared by all ranks (so the
shards still partition the data) and `random_shuffle` mixes samples in a prefetch buffer. Each sample
is read once per epoch over all ranks; rank sample counts differ by at most one (no padding).
"""

from pathlib import Path

from distgan.data.manifest import image_extension, read_manifest
from distgan.data.writer import LABEL_INT32_EXT
from distgan.errors import DataError
from distgan.runtime import distributed

READER_NAME = "reader"


def decoder_placement() -> tuple[int | None, str]:
    """(device_id, decoder device): GPU-assisted "mixed" decoding on this process's GPU (`distributed.local_device`:
    the one Ray Train assigned, or LOCAL_RANK's), else "cpu"."""
    device = distributed.local_device()
    if device.type == "cuda":
        return device.index, "mixed"
    return None, "cpu"  # device_id=None: DALI's default device 0 fails on a machine without CUDA


def build_pipeline(
    shard_dir: Path,
    *,
    batch_size,
    train,
    image_size,
    padding,
    flip,
    num_threads,
    rank,
    world_size,
    seed,
    shuffle,
    shards,
    checkpoint: str | None = None,
):
    """The DALI pipeline (built, not yet run) for one rank of a shard directory.

    Checkpointing is on: `DaliLoader.state()` saves the reader position and the random generators
    mid-epoch, and `checkpoint` (such a saved state) restores them exactly (train/batches.py resumes with it).
    """
    from nvidia.dali import fn, pipeline_def, types

    manifest = read_manifest(shard_dir)
    if any("index" not in shard for shard in shards):
        raise DataError(f"{shard_dir}: format {manifest.get('format_version', 1)} shards have no index files; reshard")
    shape = manifest["image_shape_HWC"]
    channels = 3 if shape is None else shape[2]
    device_id, decoder = decoder_placement()

    @pipeline_def(
        batch_size=batch_size,
        num_threads=num_threads,
        device_id=device_id,
        seed=seed + rank,
        enable_checkpointing=True,
        checkpoint=checkpoint,
    )
    def pipe():
        encoded, labels = fn.readers.webdataset(
            paths=[str(Path(shard_dir) / s["name"]) for s in shards],
            index_paths=[str(Path(shard_dir) / s["index"]) for s in shards],
            ext=[image_extension(manifest), LABEL_INT32_EXT],
            dtypes=[types.UINT8, types.INT32],
            missing_component_behavior="error",
            shard_id=rank,
            num_shards=world_size,
            random_shuffle=shuffle,
            **({"shuffle_after_epoch": True, "shuffle_after_epoch_seed": seed} if shuffle else {}),
            pad_last_batch=True,  # epochs stay aligned with batches; the iterator trims the padding (PARTIAL)
            name=READER_NAME,
        )
        images = fn.decoders.image(encoded, device=decoder, output_type=types.GRAY if channels == 1 else types.RGB)
        mirror = 0
        if train:
            if padding > 0:
                height, width = shape[0], shape[1]
                # Integer offsets in [−padding, padding]: the window of a black-padded crop, as in loader.augment.
                dy = fn.random.uniform(values=list(range(-padding, padding + 1)), dtype=types.FLOAT)
                dx = fn.random.uniform(values=list(range(-padding, padding + 1)), dtype=types.FLOAT)
                images = fn.slice(
                    images,
                    fn.stack(dy, dx),
                    fn.constant(fdata=[float(height), float(width)]),
                    axis_names="HW",
                    normalized_anchor=False,
                    normalized_shape=False,
                    out_of_bounds_policy="pad",
                    fill_values=0,
                )
            if flip:
                mirror = fn.random.coin_flip(probability=0.5)
        elif image_size is not None:
            images = fn.resize(images, size=[image_size, image_size], interp_type=types.INTERP_LINEAR, antialias=False)
        images = fn.crop_mirror_normalize(
            images,
            dtype=types.FLOAT,
            output_layout="CHW",
            mean=[127.5] * channels,
            std=[127.5] * channels,
            mirror=mirror,
        )
        return images, labels

    return pipe()


class DaliLoader:
    """DALIGenericIterator over `build_pipeline`, yielding {"images", "labels"} batches per epoch."""

    backend = "dali"

    def __init__(self, shard_dir: Path, **options):
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        self.pipeline = build_pipeline(Path(shard_dir), **options)
        self.pipeline.build()
        self.iterator = DALIGenericIterator(
            [self.pipeline],
            ["images", "labels"],
            reader_name=READER_NAME,
            last_batch_policy=LastBatchPolicy.PARTIAL,  # the shard's tail batch is returned, not padded
            auto_reset=True,
        )

    def state(self) -> str:
        """The pipeline's checkpoint after the batches yielded so far (for `build_pipeline(checkpoint=...)`)."""
        return self.iterator.checkpoints()[0]

    def epoch(self, epoch: int):
        """Yield the next epoch's batches (DALI's epochs advance in order; `epoch` is for symmetry)."""
        for (batch,) in self.iterator:
            yield {"images": batch["images"], "labels": batch["labels"].reshape(-1).long()}
