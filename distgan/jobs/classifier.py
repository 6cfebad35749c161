"""The classifier job: train a classifier on shards (real, synthetic or a mixture), data-parallel, and test it on the
real test split; rank 0 writes its scores (and, if asked, the model: the domain feature extractor)."""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from distgan.config import ClassifierConfig, EngineConfig
from distgan.data.shards import BadSamples
from distgan.jobs.stages import recorded_stage
from distgan.layout import CHECKPOINTS_DIR, MODEL_FILE, SCORES_FILE
from distgan.models.classifiers import save_classifier
from distgan.profiling import StepTimer, UtilisationSampler, summarise, write_json
from distgan.runtime import distributed
from distgan.runtime.atomic import write_json_atomic
from distgan.train.batches import open_split, split_info
from distgan.train.checkpoint import LATEST_NAME
from distgan.train.classifier import evaluate_classifier, train_classifier
from distgan.train.launch import report

REPORTS_PER_JOB = 3  # progress reports of a classifier job besides its final scores (~1 s each under Ray Train)
PROFILE_INTERVAL_S = 1.0  # utilisation samples of a classifier job (the sampler costs < 0.1 % of a core)


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
    checkpoint_dir = out_dir / CHECKPOINTS_DIR if engine_cfg.checkpoint_every_steps else None
    resumed_from_step = latest_checkpoint_step(checkpoint_dir)  # what train_classifier restores, if any
    timer = StepTimer(distributed.select_device())
    with recorded_stage(out_dir, "train"), profiled(out_dir, timer) as profile:
        model = train_classifier(
            cfg,
            train,
            num_classes=len(test_classes),
            engine_cfg=engine_cfg,
            checkpoint_dir=checkpoint_dir,
            on_epoch_end=report_some_epochs,
            timer=timer,
        )
    with recorded_stage(out_dir, "evaluate"):
        scores = evaluate_classifier(model, test)
    worker_nodes = distributed.node_identities()  # collective
    if distributed.rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if job.save_model:
            save_classifier(
                out_dir / MODEL_FILE, model, arch=cfg.arch, in_channels=channels, num_classes=len(test_classes)
            )
        # Streamed: the manifest's count (skipped samples, if any, are in the bad-sample fields).
        scores |= {"num_train_samples": int(num_train_samples)} | bad.as_dict()
        # The checkpoint this run resumed from (None: from step 0) and the optimizer steps it took after it.
        scores |= {"resumed_from_step": resumed_from_step, "num_steps_trained": timer.num_steps}
        scores |= {"worker_nodes": worker_nodes}  # rank r's node (Ray node id, else hostname)
        write_json_atomic(out_dir / SCORES_FILE, scores)
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
    return json.loads((Path(out_dir) / SCORES_FILE).read_text())
