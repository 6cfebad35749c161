"""The sweep's generative model and what it makes: the GAN the sweep trains (`--generator.kind distgan`) or the
user's own (docs/generators.md), its knob values, and the synthetic set at each value — one image per real
training image of the same class, fitted to the real data's size and channels, sampled by the sampling job
(`jobs/sampling.py`) and cached.

A user's generator is opened once on the driver before Ray starts, so that a wrong flag, a missing weights file or
a broken contract is one error before any work; its knob says which values the sweep takes by default.
"""

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from distgan.config import GanConfig, GeneratorConfig, SweepConfig, digest
from distgan.data.manifest import manifest_digest, read_manifest
from distgan.errors import ConfigError
from distgan.generators import LoadedGenerator, checked_sample, knob_values
from distgan.jobs.placement import sampling_jobs
from distgan.jobs.sampling import open_sweep_generator, sampling_job, sampling_worker
from distgan.layout import synthetic_set
from distgan.runtime.atomic import made_once
from distgan.runtime.distributed import PRECISION_ENV
from distgan.runtime.hashing import sha256_of
from distgan.schema import KNOBS, check_knob_values, knob_prefix
from distgan.train.launch import run_data_parallel

log = logging.getLogger("distgan")
PROBE_KINDS = ("python", "torchscript", "samples")  # user code or files: their contract is probed before any work


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
    return f"{knob_prefix(knob)}{knob_value:g}"


def class_names_of(real_train_dir: Path) -> tuple[str, ...]:
    return tuple(read_manifest(real_train_dir)["class_names"])


def resolve_generator(cfg: SweepConfig, real_train_dir: Path) -> tuple[SweepConfig, SweepGenerator | None]:
    """(cfg with its knob values filled in and checked, the user's generator opened once on the CPU and its contract
    probed), or (cfg, None) when the sweep trains its own GAN (cfg.gan; knob: the truncation)."""
    if cfg.generator.trained_by_the_sweep:
        return with_knob_values(cfg, "truncation", KNOBS["truncation"].defaults), None
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
    elif loaded.knob in KNOBS:
        defaults = KNOBS[loaded.knob].defaults
    elif not cfg.knob_values:
        raise ConfigError(f"{loaded.name} samples at a {loaded.knob!r}: say at which values with --knob-values")
    else:
        defaults = cfg.knob_values
    cfg = with_knob_values(cfg, loaded.knob, defaults)
    if cfg.generator.kind in PROBE_KINDS:
        probe_contract(loaded, cfg.knob_values[0])
    return cfg, SweepGenerator(cfg.generator, identity["sha256"], loaded.knob)


def probe_contract(loaded: LoadedGenerator, knob_value: float | None) -> None:
    """Two images of the first classes at the sweep's first knob value, checked against the contract (dtype, shape,
    channels): a user's generator that breaks it fails here, on the driver, not in every trial after the real row."""
    checked_sample(loaded, torch.arange(2) % loaded.num_classes, knob_value, torch.Generator().manual_seed(0))


def with_knob_values(cfg: SweepConfig, knob: str | None, defaults: tuple) -> SweepConfig:
    """cfg with knob_values set (the defaults when none were given), each checked against the knob's range."""
    values = tuple(cfg.knob_values or defaults)
    check_knob_values(knob, values)
    return replace(cfg, knob_values=values)


def prepare_synthetic_shards(
    cfg: SweepConfig, real_train_dir: Path, generator: SweepGenerator, knob_value: float | None, *, root: Path
) -> Path:
    """One generated image per real training image, same class (or --sample.num-images in the real proportions), at
    `knob_value`, sampled where `placement.sampling_jobs` says; cached under `root` by generator, real data, knob
    value and sampling config. Concurrent trials wanting the same set wait for one to make it."""
    launch = sampling_jobs(cfg, generator.config.kind)
    # Where it is sampled and the precision asked for: a set sampled in bf16 on GPUs is not the fp32 set of a CPU run.
    arithmetic = ("cuda" if launch.gpus_per_worker > 0 else "cpu", os.environ.get(PRECISION_ENV, "auto"))
    key = digest(
        generator.sha256, generator.config, manifest_digest(real_train_dir), knob_value, cfg.sample, arithmetic
    )
    out = synthetic_set(root, point_name(generator.knob, knob_value), key)

    def sample() -> None:
        job = sampling_job(
            generator.config, cfg.sample, knob_value, real_train_dir, out_dir=out, shard_size=cfg.data.shard_max_samples
        )
        run_data_parallel(sampling_worker, job, launch=launch, name=f"sample-{key}")
        log.info("made synthetic shards %s: %s", point_name(generator.knob, knob_value), out)

    made_once(out, sample)
    return out
