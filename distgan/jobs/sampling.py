"""The sampling job: a generator (any kind) sampled into shards like the real training split it stands for — its
class counts (or `--sample.num-images` in their proportions), image size and channels — each rank writing its own
shards (`generators.sampling.sample_to_shards`: the same set whatever the number of ranks, resumable)."""

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distgan.config import GeneratorConfig, SampleConfig, to_dict
from distgan.data.manifest import manifest_digest, read_manifest
from distgan.errors import ConfigError
from distgan.generators import LoadedGenerator, open_generator
from distgan.generators.sampling import sample_to_shards
from distgan.generators.synthetic import synthetic_labels
from distgan.jobs.stages import recorded_stage
from distgan.runtime import distributed


def open_sweep_generator(
    sample: SampleConfig, generator: GeneratorConfig, class_names: tuple[str, ...], device: torch.device
) -> LoadedGenerator:
    """Open `generator` for the dataset's classes (by ImageNet synset when --generator.synsets maps them)."""
    synsets = generator.synsets
    if synsets and len(synsets) != len(class_names):
        raise ConfigError(f"--generator.synsets names {len(synsets)} classes, the dataset has {len(class_names)}")
    return open_generator(
        generator.kind,
        generator.target,
        generator.weights,
        num_classes=len(class_names),
        device=device,
        class_names=synsets or class_names,
        truncation_convention=sample.truncation_convention,
        truncation_factor=sample.truncation_factor,
    )


@dataclass(frozen=True)
class SamplingJob:
    """A synthetic set to sample, in the form of the real data it stands for: every rank of the job runs
    `sampling_worker` with it."""

    generator: GeneratorConfig
    sample: SampleConfig
    knob_value: float | None
    labels_N: np.ndarray
    class_names: tuple[str, ...]
    image_size: int
    channels: int
    shard_size: int
    out_dir: Path
    provenance: dict


def sampling_job(
    generator: GeneratorConfig,
    sample: SampleConfig,
    knob_value: float | None,
    real_train_dir: Path,
    *,
    out_dir: Path,
    shard_size: int,
) -> SamplingJob:
    """The job of one synthetic set like the real training shards in `real_train_dir`: their class counts (or
    sample.num_images in their proportions), image size and channels. Its provenance has the flags; sample_to_shards
    adds what made it (sha256) and the seeding."""
    manifest = read_manifest(real_train_dir)
    height, _, channels = manifest["image_shape_HWC"]
    provenance = {
        "kind": "synthetic",
        "knob_value": knob_value,
        "generator": to_dict(generator),
        "sample": to_dict(sample),
        "fitted_to": {"image_size": height, "channels": channels},
        "real_train_manifest_sha256": manifest_digest(real_train_dir),
    }
    return SamplingJob(
        generator=generator,
        sample=sample,
        knob_value=knob_value,
        labels_N=synthetic_labels(manifest["class_counts"], sample.seed, sample.num_images),
        class_names=tuple(manifest["class_names"]),
        image_size=height,
        channels=channels,
        shard_size=shard_size,
        out_dir=out_dir,
        provenance=provenance,
    )


def sampling_worker(job: SamplingJob) -> dict:
    """One rank of a sampling job: the generator on this rank's device, its shards of the set (sample_to_shards).
    Returns the set's manifest."""
    loaded = open_sweep_generator(job.sample, job.generator, job.class_names, distributed.select_device())
    # A set found complete is not sampled again: its record stays the one of the job that made it.
    with nullcontext() if job.out_dir.is_dir() else recorded_stage(job.out_dir, "sample"):
        manifest = sample_to_shards(
            loaded,
            job.labels_N,
            job.class_names,
            job.knob_value,
            seed=job.sample.seed,
            out_dir=job.out_dir,
            shard_size=job.shard_size,
            provenance=job.provenance,
            batch_size=job.sample.batch_size,
            fit_to=(job.image_size, job.channels),
        )
    return manifest
