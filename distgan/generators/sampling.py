"""Sample any generator into distgan shards at the paper's scale: one image per requested label (1.28 M for
ImageNet), by many workers at once, streamed, resumable, and the same set whatever the number of workers.

    work = cut into shards of `shard_size` labels in the order given; rank r of W takes shards r, r+W, ...
    per shard k: a CPU torch.Generator seeded with shard_seed(seed, k), drawn batch by batch in order
    out_dir/../.{name}.partial/   shard-NNNNNN.tar + .idx (each renamed into place), shard-NNNNNN.json (its record)
    barrier; rank 0 writes manifest.json and renames the directory to out_dir

Resume: a shard whose record names the same job and whose tar and index match the record's sha256 is kept; any other
(half-written, corrupt, from other settings) is sampled again. A reader sees out_dir whole or not at all, in the
layout `distgan.data.shards` reads (the records are removed before the rename). One job per out_dir at a time.
"""

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from distgan.data.manifest import LABELS_NAME, MANIFEST_NAME, read_manifest
from distgan.data.sources import fit_NHWC
from distgan.data.verify import published_record, write_record
from distgan.data.writer import build_manifest, encode_array_chunk, shard_name, write_shard_file
from distgan.errors import ConfigError, DataError
from distgan.generators.contract import LoadedGenerator, checked_labels, checked_sample
from distgan.runtime import distributed
from distgan.runtime.atomic import atomic_path, write_json_atomic
from distgan.runtime.hashing import sha256_of

IMAGE_FORMAT = "png"  # lossless: what is scored and trained on is what the generator made
ENCODING_CONTEXT = multiprocessing.get_context("forkserver")  # how encoding processes start (`_encoding_pool`)
SEEDING = "shard k: torch.Generator().manual_seed(shard_seed(seed, k)), batches drawn from it in label order"


def shard_seed(seed: int, shard_index: int) -> int:
    """The seed of shard k's generator: the first 8 bytes of sha256("distgan.sampling:{seed}:{k}") as a little-endian
    integer, halved to stay below 2**63. A hash rather than seed + k, so that runs with nearby seeds share no stream."""
    digest = hashlib.sha256(f"distgan.sampling:{seed}:{shard_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def work_dir_of(out_dir: Path) -> Path:
    """Where the shards of `out_dir` are written until the set is complete: a stable hidden name beside it, so that a
    rerun finds the finished shards of a killed job."""
    return out_dir.with_name(f".{out_dir.name}.partial")


def record_path(work_dir: Path, shard_index: int) -> Path:
    """The record of a finished shard: the job it belongs to and its manifest entry (sha256 of tar and index)."""
    return work_dir / Path(shard_name(shard_index)).with_suffix(".json")


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """One sampling job, the same on every rank."""

    loaded: LoadedGenerator
    labels_N: np.ndarray
    knob_value: float | None
    seed: int
    shard_size: int
    batch_size: int
    work_dir: Path
    job: dict  # provenance (generator, settings, labels digest), class names, image shape
    fit_to: tuple[int, int] | None  # (image size, channels) the images are fitted to, if not the generator's

    @property
    def num_shards(self) -> int:
        return -(-len(self.labels_N) // self.shard_size)

    def bounds(self, shard_index: int) -> tuple[int, int]:
        start = shard_index * self.shard_size
        return start, min(start + self.shard_size, len(self.labels_N))

    def num_images(self, shard_indices) -> int:
        return sum(stop - start for start, stop in map(self.bounds, shard_indices))


def sample_to_shards(
    loaded: LoadedGenerator,
    labels_N: np.ndarray,
    class_names: tuple[str, ...],
    knob_value: float | None,
    *,
    seed: int,
    out_dir: Path,
    shard_size: int,
    provenance: dict,
    batch_size: int,
    encode_workers: int | None = None,
    fit_to: tuple[int, int] | None = None,
) -> dict:
    """Sample one image of class labels_N[i] per i with `loaded` (from `open_generator`; each batch through the
    contract's `checked_sample`) at `knob_value` into the shard directory out_dir. Every rank of the process group
    (torchrun's, or Ray Train's under `train.launch.run_data_parallel`) calls it alike, with the same arguments;
    one process alone is a world of one. Returns the manifest, on every rank.

    Noise comes from (seed, shard), not (seed, image): the contract takes one torch.Generator per `sample` call, so
    shard k's batches draw in order from one generator seeded with `shard_seed(seed, k)`. The set is byte-identical
    whatever the number of workers and across resumes; it changes with seed, shard_size and batch_size, which the
    manifest's provenance["sampling"] records beside the labels' digest, the generator's identity (its sha256) and the
    precision it samples in (`precision`, contract.py).
    A finished shard is reused only if all of the provenance is equal. If out_dir is complete with the same
    provenance it is returned as is. PNG encoding runs in `encode_workers` processes (default: this
    rank's share of the node's CPUs) while the next batch is generated; at most about two shards are held in memory.
    `fit_to` (image size, channels): each batch fitted to the real data it stands for (`data.sources.fit_NHWC`:
    bilinear, as real images are, and the real data's channels), so that a classifier trained on the set is tested on
    real images of the same form.
    """
    out_dir = Path(out_dir)
    encode_workers = default_encode_workers() if encode_workers is None else encode_workers
    labels_N = _checked_arguments(loaded, labels_N, class_names, shard_size, batch_size, encode_workers)
    size, channels = fit_to or (loaded.image_size, loaded.channels)
    image_shape_HWC = [size, size, channels]
    sampling = {"generator": loaded.identity, "seed": seed, "knob": loaded.knob, "knob_value": knob_value}
    sampling |= {"shard_size": shard_size, "batch_size": batch_size, "labels_sha256": _labels_digest(labels_N)}
    sampling |= {"seeding": SEEDING, "precision": loaded.precision}
    provenance = {**provenance, "sampling": sampling}
    # What a finished shard's record must hold to be reused, as JSON reads it back (tuples become lists).
    job = json.loads(json.dumps({"provenance": provenance, "class_names": list(class_names), "shape": image_shape_HWC}))
    if out_dir.exists():
        return _existing(out_dir, job)
    plan = _Plan(
        loaded=loaded,
        labels_N=labels_N,
        knob_value=knob_value,
        seed=seed,
        shard_size=shard_size,
        batch_size=batch_size,
        work_dir=work_dir_of(out_dir),
        job=job,
        fit_to=fit_to,
    )
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    rank, world = distributed.rank(), distributed.world_size()
    mine = range(rank, plan.num_shards, world)
    todo = [k for k in mine if not _is_finished(plan, k)]
    total, done = plan.num_images(mine), plan.num_images(mine) - plan.num_images(todo)
    disable = rank != 0 or not sys.stderr.isatty()
    with tqdm(total=total, initial=done, desc=f"sample {out_dir.name}", unit="img", disable=disable) as progress:
        _write_shards(plan, todo, progress, encode_workers)
    distributed.barrier()  # every shard has its record
    if rank == 0:
        _publish(plan, out_dir, class_names, image_shape_HWC, provenance)
    distributed.barrier()  # out_dir is complete
    return read_manifest(out_dir)


def _checked_arguments(loaded: LoadedGenerator, labels_N, class_names, *sizes: int) -> np.ndarray:
    """The labels as int64, all checked before any work starts (the contract checks each batch again)."""
    for name, value in zip(("shard_size", "batch_size", "encode_workers"), sizes, strict=True):
        if value < 1:
            raise ConfigError(f"sampling {name} must be ≥ 1 (got {value})")
    if len(class_names) != loaded.num_classes:
        raise ConfigError(f"{loaded.name} was opened for {loaded.num_classes} classes, not {len(class_names)}")
    labels_N = checked_labels(loaded, labels_N).numpy()
    if len(labels_N) == 0:
        raise ConfigError(f"{loaded.name}: no labels to sample")
    return labels_N


def _labels_digest(labels_N: np.ndarray) -> str:
    return hashlib.sha256(labels_N.astype("<i8").tobytes()).hexdigest()


def _existing(out_dir: Path, job: dict) -> dict:
    """The manifest of a complete out_dir made by the same job; anything else there is refused, never overwritten."""
    manifest = read_manifest(out_dir)
    made_by = {"provenance": manifest["provenance"], "class_names": manifest["class_names"]}
    if made_by | {"shape": manifest["image_shape_HWC"]} != job:
        raise DataError(f"{out_dir}: holds shards sampled with other settings or generator; remove it or pick another")
    return manifest


def _is_finished(plan: _Plan, shard_index: int) -> bool:
    """Whether shard k is already written by this job: its record names this job, and its tar and index are present
    and match the record's sha256 (a half-written or corrupt shard is sampled again)."""
    try:
        record = json.loads(record_path(plan.work_dir, shard_index).read_text())
        entry = record["entry"]
        return (
            record["job"] == plan.job
            and sha256_of(plan.work_dir / entry["name"]) == entry["sha256"]
            and sha256_of(plan.work_dir / entry["index"]) == entry["index_sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_shards(plan: _Plan, todo: list[int], progress: tqdm, encode_workers: int) -> None:
    """Sample the shards `todo`: generation here, PNG encoding in `encode_workers` processes, tar writing in a thread.
    Before a third shard is generated, the first is written: memory holds about two shards whatever the set size.
    If generation fails, the shards already handed to the writer are finished first (a rerun keeps them)."""
    with _encoding_pool(encode_workers) as encoders, ThreadPoolExecutor(1) as writer:
        in_flight: deque[Future] = deque()
        for k in todo:
            start, stop = plan.bounds(k)
            rng = torch.Generator().manual_seed(shard_seed(plan.seed, k))
            encoded = []
            for first in range(start, stop, plan.batch_size):
                labels = torch.from_numpy(plan.labels_N[first : min(first + plan.batch_size, stop)])
                with torch.no_grad():  # on the host: a GPU's forward is waited for (the copy is small beside it)
                    images_NHWC = checked_sample(plan.loaded, labels, plan.knob_value, rng).numpy()
                if plan.fit_to is not None:
                    images_NHWC = fit_NHWC(images_NHWC, *plan.fit_to)
                chunks = np.array_split(images_NHWC, min(encode_workers, len(images_NHWC)))
                encoded += [encoders.submit(encode_array_chunk, (chunk, IMAGE_FORMAT, 0)) for chunk in chunks]
                progress.update(len(labels))
            in_flight.append(writer.submit(_write_shard, plan, k, encoded))
            if len(in_flight) == 2:
                in_flight.popleft().result()
        for shard in in_flight:
            shard.result()


def _encoding_pool(num_workers: int) -> ProcessPoolExecutor:
    """Processes that encode PNGs: PIL holds the GIL while it encodes into memory, so threads would encode one image
    at a time. Never forked from this process, whose CUDA, NCCL, gloo and Ray threads may hold locks at the fork that
    the child then waits on forever: a fork server, started once per process (a fresh interpreter, fork + exec), forks
    them from its single thread, whenever CUDA started here. It imports the encoder once, before its first fork, so
    a worker starts in milliseconds and a pool per set costs nothing beside the set."""
    ENCODING_CONTEXT.set_forkserver_preload([encode_array_chunk.__module__])  # no effect once the server runs
    return ProcessPoolExecutor(num_workers, mp_context=ENCODING_CONTEXT)


def default_encode_workers() -> int:
    """This rank's share of the CPUs its node lets it use (torchrun's LOCAL_WORLD_SIZE ranks share them), less one
    for the rank itself (generation, tar writing), at least 1."""
    return max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")) - 1)


def _write_shard(plan: _Plan, shard_index: int, encoded: list[Future]) -> None:
    """Write shard k (renamed into place, then its index), then its record: a shard without a record is not trusted."""
    start, stop = plan.bounds(shard_index)
    images = [data for chunk in encoded for data in chunk.result()]
    samples = [(f"{start + i:08d}", data, int(plan.labels_N[start + i])) for i, data in enumerate(images)]
    assert len(samples) == stop - start
    entry = write_shard_file(plan.work_dir / shard_name(shard_index), samples, image_format=IMAGE_FORMAT)
    write_json_atomic(record_path(plan.work_dir, shard_index), {"job": plan.job, "entry": entry})


def _publish(plan: _Plan, out_dir: Path, class_names, image_shape_HWC, provenance: dict) -> None:
    """Rank 0, after every rank finished: the manifest from the records, leftovers removed, the directory renamed."""
    entries = []
    for k in range(plan.num_shards):
        try:
            record = json.loads(record_path(plan.work_dir, k).read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"{record_path(plan.work_dir, k)}: no record of a finished shard ({err})") from None
        if record["job"] != plan.job:
            raise DataError(f"{record_path(plan.work_dir, k)}: record of another job (was out_dir sampled twice?)")
        entries.append(record["entry"])
    # Records, temporary files of killed writers and shards of an earlier, larger job are not part of the set.
    keep = {name for entry in entries for name in (entry["name"], entry["index"])}
    for path in plan.work_dir.iterdir():
        if path.name in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    # Every label in set order beside the manifest: label scans read it, not the shards (data/shards.read_labels).
    with atomic_path(plan.work_dir / LABELS_NAME, suffix=".npy") as tmp:
        np.save(tmp, plan.labels_N.astype(np.int32))
    manifest = build_manifest(
        shards=entries,
        class_names=tuple(class_names),
        class_counts=np.bincount(plan.labels_N, minlength=len(class_names)).tolist(),
        image_shape_HWC=tuple(image_shape_HWC),
        image_format=IMAGE_FORMAT,
        jpeg_quality=0,
        provenance=provenance,
        labels={"name": LABELS_NAME, "sha256": sha256_of(plan.work_dir / LABELS_NAME)},
    )
    write_json_atomic(plan.work_dir / MANIFEST_NAME, manifest)
    # Publication: each shard's sha256 was taken from the bytes its rank wrote; readers trust it (data/verify.py)
    # instead of every rank of every job hashing the set again.
    write_record(plan.work_dir, published_record(plan.work_dir, manifest))
    plan.work_dir.rename(out_dir)
