"""What a sweep makes once and every trial reuses, cached by the digest of all that determines it: real shards, the
generator, the domain feature extractor, the real side of every feature space (experiments/feature_spaces.py) and
the mixtures (the synthetic sets of each knob value: experiments/synthetic.py). Caches live in
`<results_dir>/cache/` (layout.py; shared storage on a cluster), appear atomically, and are never recomputed while
valid.
"""

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from distgan.config import GanConfig, SweepConfig, digest, to_dict
from distgan.data.imagefolder import write_image_folder_shards
from distgan.data.manifest import manifest_digest
from distgan.data.mixtures import write_mixture
from distgan.data.overlap import refuse_shared_images
from distgan.data.shards import write_shards
from distgan.data.sources import load_split
from distgan.data.writer import real_shard_options
from distgan.experiments.compared import ComparedGenerator
from distgan.experiments.feature_spaces import describe_spaces, feature_spaces, prepare_references
from distgan.experiments.synthetic import SweepGenerator, trained_gan
from distgan.jobs.classifier import ClassifierJob, classifier_worker
from distgan.jobs.gan import GanJob, gan_worker
from distgan.jobs.placement import sweep_jobs
from distgan.jobs.scoring import FeatureSpaces
from distgan.layout import GENERATOR_FILE, META_FILE, MODEL_FILE, SweepPaths
from distgan.runtime.atomic import build_cached_dir, made_once, write_json_atomic
from distgan.runtime.hashing import sha256_of
from distgan.train.launch import Launch, run_data_parallel

log = logging.getLogger("distgan")


@dataclass(frozen=True)
class RealShards:
    """The real train and test splits' shards (absolute)."""

    train_dir: Path
    test_dir: Path


@dataclass(frozen=True)
class SweepArtifacts:
    """Absolute paths of a sweep's shared artifacts."""

    paths: SweepPaths
    real_train_dir: Path
    real_test_dir: Path
    generator: SweepGenerator | None  # the sweep's: its trained GAN or the user's; None for spaces that train their own
    extractor_path: Path  # the domain classifier: the domain feature space and every GAN-test accuracy
    extractor_sha256: str  # hashed once here, not by every trial's driver (ResNet-50: ~100 MB a read)
    spaces: FeatureSpaces  # the feature spaces' networks and metric settings
    references: dict[str, Path]  # feature space -> its real side and real row (experiments/feature_spaces.py)
    spaces_described: dict  # result.json's `feature_spaces`
    compared: dict[str, ComparedGenerator] = field(default_factory=dict)  # the compare space's generators, by name


def _announce(built: bool, what: str, path: Path) -> None:
    log.info("%s %s: %s", "made" if built else "cache hit,", what, path)


def prepare_real_shards(cfg: SweepConfig) -> RealShards:
    """Shards of the real train and test splits (keyed by the data config), checked to share no image."""
    paths = []
    streamed = cfg.data.source == "image_folder"  # ImageNet-scale: streamed, decoded in a process per CPU
    for split in ("train", "test"):
        out = SweepPaths(cfg.results_dir, cfg.name).real_shards(cfg.data.source, split, digest(cfg.data))
        # A source read into memory is read before anything is written: a wrong path is one error, and no cache.
        images = None
        if not streamed and not out.exists():
            images = load_split(cfg.data.source, split, path=cfg.data.path, image_size=cfg.data.image_size)

        def make(split=split, out=out, images=images) -> None:  # the writers publish out_dir whole themselves
            provenance = {"kind": "real", "split": split, "data": to_dict(cfg.data)}
            if streamed:
                options = real_shard_options(cfg.data, num_workers=os.cpu_count())
                write_image_folder_shards(cfg.data.path, split, out, options=options, image_size=cfg.data.image_size,
                                          provenance=provenance)  # fmt: skip
            else:
                provenance["split_rule"] = images.split_rule
                write_shards(images, out, max_samples_per_shard=cfg.data.shard_max_samples, provenance=provenance,
                             options=real_shard_options(cfg.data))  # fmt: skip

        _announce(made_once(out, make), f"real {split} shards", out)
        paths.append(out)
    refuse_shared_images(*paths)  # at every start: a cache made before this check was added is checked too
    return RealShards(paths[0], paths[1])


def prepare_generator(cfg: SweepConfig, real_train_dir: Path, gan: GanConfig, *, launch: Launch) -> SweepGenerator:
    """Train `gan` once per (GAN config, real data) as a data-parallel job where `launch` says."""
    out = SweepPaths(cfg.results_dir, cfg.name).gan(digest(gan, manifest_digest(real_train_dir)))

    def build(tmp: Path) -> None:
        job = GanJob(gan=gan, engine=cfg.engine, train_dir=real_train_dir, out_dir=tmp)
        run_data_parallel(gan_worker, job, launch=launch, name=f"gan-{out.name}")
        write_json_atomic(tmp / META_FILE, {"gan": to_dict(gan), "real_manifest": manifest_digest(real_train_dir)})

    _announce(build_cached_dir(out, build), "generator", out)
    return trained_gan(out / GENERATOR_FILE, gan)


def prepare_extractor(cfg: SweepConfig, real: RealShards) -> Path:
    """The domain feature extractor: cfg.classifier.arch trained on the real training split."""
    extractor_cfg = replace(cfg.classifier, epochs=cfg.metrics.extractor_epochs, seed=cfg.classifier.seed + 1)
    out = SweepPaths(cfg.results_dir, cfg.name).extractor(digest(extractor_cfg, manifest_digest(real.train_dir)))

    def build(tmp: Path) -> None:
        job = ClassifierJob(
            classifier=extractor_cfg,
            engine=cfg.engine,
            train_dir=real.train_dir,
            test_dir=real.test_dir,
            out_dir=tmp,
            save_model=True,
            on_bad_sample=cfg.data.on_bad_sample,
        )
        run_data_parallel(classifier_worker, job, launch=sweep_jobs(cfg), name=f"extractor-{out.name}")

    _announce(build_cached_dir(out, build), "domain feature extractor", out)
    return out / MODEL_FILE


def prepare_sweep(
    cfg: SweepConfig,
    real: RealShards,
    *,
    generator: SweepGenerator | None,
    with_generator: bool = True,
    compared: dict[str, ComparedGenerator] | None = None,
) -> SweepArtifacts:
    """Everything the trials share, made (or found) before the first trial starts. `generator`: the user's (opened
    by `synthetic.resolve_generator`); None: the sweep trains cfg.gan, unless `with_generator` is False. `compared`:
    the compare space's generators."""
    if generator is None and with_generator:
        generator = prepare_generator(cfg, real.train_dir, cfg.gan, launch=sweep_jobs(cfg))
    extractor_path = prepare_extractor(cfg, real)
    spaces = feature_spaces(cfg, extractor_path)
    return SweepArtifacts(
        paths=SweepPaths(cfg.results_dir, cfg.name),
        real_train_dir=real.train_dir,
        real_test_dir=real.test_dir,
        generator=generator,
        extractor_path=extractor_path,
        extractor_sha256=sha256_of(extractor_path),
        spaces=spaces,
        references=prepare_references(cfg, spaces, real.train_dir, real.test_dir),
        spaces_described=describe_spaces(cfg, spaces),
        compared=compared or {},
    )


def prepare_mixture(cfg: SweepConfig, real_train_dir: Path, synthetic_dir: Path, fraction: float) -> Path:
    """Real training shards plus round(fraction·N) generated samples following the real class histogram."""
    key = digest(manifest_digest(real_train_dir), manifest_digest(synthetic_dir), fraction, cfg.sample.seed)
    out = SweepPaths(cfg.results_dir, cfg.name).mixture(fraction, key)

    def make() -> None:
        write_mixture(  # atomic: written under a temporary name, then renamed
            out,
            real_dir=real_train_dir,
            synthetic_dir=synthetic_dir,
            synthetic_fraction=fraction,
            seed=cfg.sample.seed,
            max_samples_per_shard=cfg.data.shard_max_samples,
        )
        _announce(True, f"mixture real + {fraction:g} × generated", out)

    made_once(out, make)
    return out
