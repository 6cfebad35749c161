"""Per-worker functions of the sweep's data-parallel jobs (run on every rank by `train.launch`).

Each takes one typed job (`GanJob`, `ClassifierJob`: configs and absolute paths), reads its data from shards,
and lets rank 0 write the outputs (atomically) to the paths it was given.
"""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from distgan.config import ClassifierConfig, EngineConfig, GanConfig
from distgan.data.shards import BadSamples, read_shards
from distgan.models.classifiers import save_classifier
from distgan.models.gan import save_generator
from distgan.profiling import StepTimer, UtilisationSampler, summarise, write_json
from distgan.runtime import distributed
from distgan.runtime.atomic import write_json_atomic
from distgan.schema import LOSSES_NAME
from distgan.train.batches import open_split, split_info
from distgan.train.checkpoint import LATEST_NAME
from distgan.train.classifier import evaluate_classifier, train_classifier
from distgan.train.gan import train_gan, write_loss_curves
from distgan.train.launch import report

REPORTS_PER_JOB = 3  # progress reports of a classifier job besides its final scores (~1 s each under Ray Train)
PROFILE_INTERVAL_S = 1.0  # utilisation samples of a classifier job (the sampler costs < 0.1 % of a core)


@dataclass(frozen=True, kw_only=True)
class GanJob:
    """Train `gan` on the real shards in train_dir; write generator.pt, losses.csv and training.json to out_dir."""

    gan: GanConfig
    engine: EngineConfig
    train_dir: Path  # real training shards
    out_dir: Path  # outputs (and checkpoints/, when the engine checkpoints)
    progress: bool = True  # a progress bar on rank 0


@dataclass(frozen=True, kw_only=True)
class ClassifierJob:
    """Train `classifier` on train_dir, test it on test_dir; write scores.json (and model.pt) to out_dir."""

    classifier: ClassifierConfig
    engine: EngineConfig
    train_dir: Path  # training shards (real, synthetic or a mixture)
    test_dir: Path  # the real test split's shards
    out_dir: Path  # outputs (and checkpoints/, when the engine checkpoints)
    save_model: bool = False  # also model.pt (the domain feature extractor, `distgan train-classifier`)
    on_bad_sample: str = "error"  # "skip": damaged samples are left out and counted


def gan_worker(job: GanJob) -> None:
    """Train the conditional GAN on real shards; rank 0 saves generator.pt, losses.csv (every iteration's losses,
    docs/gans.md) and training.json (step counts, the losses every LOG_EVERY iterations)."""
    real = read_shards(job.train_dir)
    checkpoint_dir = job.out_dir / "checkpoints" if job.engine.checkpoint_every_steps else None
    generator, info = train_gan(
        job.gan, real, engine_cfg=job.engine, checkpoint_dir=checkpoint_dir, progress=job.progress
    )
    curves = info.pop("loss_curves")
    if distributed.rank() == 0:
        out_dir = job.out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        _, height, _, channels = real.images_NHWC.shape
        # The config with the loss's defaults filled in (schedule, betas): what trained this generator.
        save_generator(out_dir / "generator.pt", generator, job.gan.resolved(), image_size=height, channels=channels)
        write_loss_curves(out_dir / LOSSES_NAME, curves)
        write_json_atomic(out_dir / "training.json", info)
    report({"num_d_steps": info["num_d_steps"], "num_g_steps": info["num_g_steps"]})


def classifier_worker(job: ClassifierJob) -> None:
    """Train on `train_dir`, test on `test_dir`; rank 0 writes scores.json (and model.pt if asked).

    Each split is decoded into memory or streamed from its shards as `--classifier.loader` says
    (train/batches.open_split: "auto" streams a split whose decoded size passes the memory cap).
    """
    cfg = job.classifier
    bad = BadSamples(job.on_bad_sample)
    train = open_split(job.train_dir, cfg, bad=bad)
    test = open_split(job.test_dir, cfg, bad=bad)
    (num_train_samples, channels, train_classes), (_, _, test_classes) = split_info(train), split_info(test)
    if train_classes != test_classes:
        raise ValueError(f"train and test shards disagree on classes: {train_classes} vs {test_classes}")

    def report_some_epochs(epoch: int, metrics: dict) -> None:
        # A report is collective and costs ~1 s under Ray Train; the same stride on every rank.
        if (epoch + 1) % max(1, cfg.epochs // REPORTS_PER_JOB) == 0:
            report(metrics)

    engine_cfg, out_dir = job.engine, job.out_dir
    checkpoint_dir = out_dir / "checkpoints" if engine_cfg.checkpoint_every_steps else None
    resumed_from_step = latest_checkpoint_step(checkpoint_dir)  # what train_classifier restores, if any
    timer = StepTimer(distributed.select_device())
    with profiled(out_dir, timer) as profile:
        model = train_classifier(
            cfg,
            train,
            num_classes=len(test_classes),
            engine_cfg=engine_cfg,
            checkpoint_dir=checkpoint_dir,
            on_epoch_end=report_some_epochs,
            timer=timer,
        )
    scores = evaluate_classifier(model, test)
    worker_nodes = distributed.node_identities()  # collective
    if distributed.rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if job.save_model:
            save_classifier(
                out_dir / "model.pt", model, arch=cfg.arch, in_channels=channels, num_classes=len(test_classes)
            )
        # Streamed: the manifest's count (skipped samples, if any, are in the bad-sample fields).
        scores |= {"num_train_samples": int(num_train_samples)} | bad.as_dict()
        # The checkpoint this run resumed from (None: from step 0) and the optimizer steps it took after it.
        scores |= {"resumed_from_step": resumed_from_step, "num_steps_trained": timer.num_steps}
        scores |= {"worker_nodes": worker_nodes}  # rank r's node (Ray node id, else hostname)
        write_json_atomic(out_dir / "scores.json", scores)
    report({"epoch": cfg.epochs, "top1_error": scores["top1_error"], "top5_error": scores["top5_error"]} | profile)


@contextmanager
def profiled(out_dir: Path, timer: StepTimer) -> Iterator[dict]:
    """Sample GPU (or, without NVML, CPU and RSS) utilisation on rank 0 while the block runs; then rank 0
    writes profile.csv and profile.json to out_dir, and the yielded dict holds the summary for Ray Tune
    (gpu_util_mean, gpu_mem_peak_mib, data_wait_frac, ...; the data wait of rank 0's steps)."""
    summary: dict = {}
    if distributed.rank() != 0:
        yield summary
        return
    with UtilisationSampler(interval_s=PROFILE_INTERVAL_S) as sampler:
        yield summary
    out_dir.mkdir(parents=True, exist_ok=True)
    sampler.write_csv(out_dir / "profile.csv")
    full = summarise(sampler.samples(), timer)
    write_json(full, out_dir / "profile.json")
    summary |= {key: value for key, value in full.items() if math.isfinite(value)}  # Tune: no NaN


def latest_checkpoint_step(checkpoint_dir: Path | None) -> int | None:
    """The optimizer step of the checkpoint a job in `checkpoint_dir` resumes from: the one its `latest` file
    names (train/checkpoint.py writes "step000000012"), or None (no checkpoints, or none yet)."""
    latest = None if checkpoint_dir is None else checkpoint_dir / LATEST_NAME
    if latest is None or not latest.is_file():
        return None
    return int(latest.read_text().strip().removeprefix("step"))


def read_scores(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / "scores.json").read_text())
