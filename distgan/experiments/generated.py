"""The sweep's generative model and what it makes: the GAN the sweep trains (`--generator.kind distgan`) or the
user's own (docs/generators.md), its knob values, and the synthetic set at each value — one image per real
training image of the same class, fitted to the real data's size and channels, written as shards by
`generators.sampling.sample_to_shards` and cached.

A user's generator is opened once on the driver before Ray starts, so that a wrong flag, a missing weights file or
a broken contract is one error before any work; its knob says which values the sweep takes by default.
"""

import fcntl
import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from distgan.config import PAPER_TRUNCATIONS, GanConfig, GeneratorConfig, SampleConfig, SweepConfig, digest, to_dict
from distgan.data.manifest import manifest_digest, read_manifest
from distgan.data.mixtures import class_quotas
from distgan.data.sources import fit_NHWC
from distgan.errors import ConfigError
from distgan.generators import LoadedGenerator, checked_sample, knob_values, open_generator
from distgan.generators.sampling import sample_to_shards
from distgan.runtime import distributed
from distgan.runtime.hashing import sha256_of
from distgan.train.launch import Launch, run_data_parallel

log = logging.getLogger("distgan")

# Peebles & Xie (2023) report DiT-XL/2 at w = 1.5 (best FID) and 4.0 (its samples): a grid around both.
DEFAULT_GUIDANCE_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0)
DEFAULT_KNOB_VALUES = {"truncation": PAPER_TRUNCATIONS, "guidance": DEFAULT_GUIDANCE_SCALES}
KNOB_SHORT = {"truncation": "tau"}  # trial names: tau0.5, guidance4, <knob><value>


@dataclass(frozen=True)
class SweepGenerator:
    """The generator a sweep's trials sample: its flags (paths absolute), what made it, and its knob."""

    config: GeneratorConfig  # for a GAN the sweep trained: kind distgan, weights its generator.pt
    sha256: str
    knob: str | None
    gan: GanConfig | None = None  # the config of a GAN the sweep trained; None for a user's generator


def trained_gan(path: Path, gan: GanConfig) -> SweepGenerator:
    """A generator.pt the sweep (or a gan / gan-test trial) trained with `gan`."""
    return SweepGenerator(GeneratorConfig(kind="distgan", weights=path), sha256_of(path), "truncation", gan)


def point_name(knob: str | None, knob_value: float | None) -> str:
    """A generated set's short name, also its trial's: tau0.5, guidance4, generated (a generator without knob)."""
    if knob_value is None:
        return "generated"
    return f"{KNOB_SHORT.get(knob, knob or 'knob')}{knob_value:g}"


def class_names_of(real_train_dir: Path) -> tuple[str, ...]:
    return tuple(read_manifest(real_train_dir)["class_names"])


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


def resolve_generator(cfg: SweepConfig, real_train_dir: Path) -> tuple[SweepConfig, SweepGenerator | None]:
    """(cfg with its knob values filled in and checked, the user's generator opened once on the CPU), or (cfg, None)
    when the sweep trains its own GAN (cfg.gan; knob: the truncation)."""
    if cfg.generator.trained_by_the_sweep:
        return with_knob_values(cfg, "truncation", DEFAULT_KNOB_VALUES["truncation"]), None
    loaded = open_sweep_generator(cfg.sample, cfg.generator, class_names_of(real_train_dir), torch.device("cpu"))
    identity = loaded.identity
    log.info("generator: %s, %s %s", loaded.name, identity["sha256_of"], identity["sha256"][:12])
    if cfg.generator.kind == "samples":
        defaults = tuple(knob_values(Path(cfg.generator.target)))
        missing = sorted(set(cfg.knob_values) - set(defaults))
        if missing:
            raise ConfigError(f"--knob-values {missing}: {cfg.generator.target} has folders for {list(defaults)} only")
    elif loaded.knob is None:
        defaults = (None,)
        if cfg.knob_values:
            raise ConfigError(f"--knob-values: {loaded.name} has no sampling knob (its `knob` is None)")
    elif loaded.knob in DEFAULT_KNOB_VALUES:
        defaults = DEFAULT_KNOB_VALUES[loaded.knob]
    elif not cfg.knob_values:
        raise ConfigError(f"{loaded.name} samples at a {loaded.knob!r}: say at which values with --knob-values")
    else:
        defaults = cfg.knob_values
    generator = SweepGenerator(cfg.generator, identity["sha256"], loaded.knob)
    return with_knob_values(cfg, loaded.knob, defaults), generator


def with_knob_values(cfg: SweepConfig, knob: str | None, defaults: tuple) -> SweepConfig:
    """cfg with knob_values set (the defaults when none were given), each checked against the knob's range."""
    values = cfg.knob_values or defaults
    for value in values:
        if knob == "truncation" and not value > 0:
            raise ConfigError(f"--knob-values must be truncations > 0 (got {value:g})")
        if knob == "guidance" and not value >= 1:
            raise ConfigError(f"--knob-values must be guidance scales ≥ 1 (got {value:g})")
    return replace(cfg, knob_values=tuple(values))


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


def synthetic_labels(class_counts: list[int], seed: int, num_images: int = 0) -> np.ndarray:
    """The classes of a synthetic set: the real training split's class counts (from its manifest: no image is read),
    or, for num_images > 0, that many images split over the classes in the same proportions (largest remainder, as
    mixtures are: the quotas sum exactly to num_images); in a seeded random order, so that every shard holds every
    class as a shuffled real split's would."""
    counts = class_quotas(class_counts, num_images) if num_images else class_counts
    labels_N = np.repeat(np.arange(len(class_counts), dtype=np.int64), counts)
    return np.random.default_rng(seed).permutation(labels_N)


class FittedToData:
    """A generator's images fitted to the real data: resized (bilinear, as real images are) and converted to its
    channels, so that a classifier trained on them is tested on real images of the same form."""

    def __init__(self, loaded: LoadedGenerator, image_size: int, channels: int):
        self.loaded, self.image_size, self.channels, self.knob = loaded, image_size, channels, loaded.knob

    def sample(self, labels: torch.Tensor, knob_value: float | None, generator: torch.Generator) -> torch.Tensor:
        images_NHWC = checked_sample(self.loaded, labels, knob_value, generator).numpy()
        return torch.from_numpy(fit_NHWC(images_NHWC, self.image_size, self.channels))


def sampling_worker(job: SamplingJob) -> dict:
    """One rank of a sampling job: the generator on this rank's device, its shards of the set (sample_to_shards).
    Returns the set's manifest."""
    loaded = open_sweep_generator(job.sample, job.generator, job.class_names, distributed.select_device())
    fitted = LoadedGenerator(FittedToData(loaded, job.image_size, job.channels), loaded.num_classes, loaded.identity)
    return sample_to_shards(
        fitted,
        job.labels_N,
        job.class_names,
        job.knob_value,
        seed=job.sample.seed,
        out_dir=job.out_dir,
        shard_size=job.shard_size,
        provenance=job.provenance,
        batch_size=job.sample.batch_size,
    )


def sampling_launch(cfg: SweepConfig, generator: SweepGenerator, launch: Launch) -> Launch:
    """Where a synthetic set is sampled: on the trial's GPU workers (Ray Train, each rank its shards); on CPUs, and
    for images read from folders, in the trial's own process (a Ray Train group costs ~10 s per set for nothing)."""
    if cfg.use_gpu and generator.config.kind != "samples":
        return replace(launch, in_process=False, in_tune_trial=False)
    return replace(launch, workers=1, in_process=True, in_tune_trial=False)


def prepare_synthetic_shards(
    cfg: SweepConfig,
    real_train_dir: Path,
    generator: SweepGenerator,
    knob_value: float | None,
    launch: Launch,
    *,
    root: Path,
) -> Path:
    """One generated image per real training image, same class (or --sample.num-images in the real proportions), at
    `knob_value`; cached under `root` by generator, real data, knob value and sampling config. Concurrent trials
    wanting the same set wait for one to make it."""
    key = digest(generator.sha256, generator.config, manifest_digest(real_train_dir), knob_value, cfg.sample)
    out = root / f"synthetic-{point_name(generator.knob, knob_value)}-{key}"
    if out.is_dir():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{out.name}.lock"):
        if out.is_dir():  # made by another trial while this one waited
            return out
        job = sampling_job(
            generator.config, cfg.sample, knob_value, real_train_dir, out_dir=out, shard_size=cfg.data.shard_max_samples
        )
        run_data_parallel(sampling_worker, job, launch=sampling_launch(cfg, generator, launch), name=f"sample-{key}")
    log.info("made synthetic shards %s: %s", point_name(generator.knob, knob_value), out)
    return out


@contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` (flock: released if the holder dies), held while the block runs."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
