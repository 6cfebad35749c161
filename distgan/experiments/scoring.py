"""The numbers of a trial's training set, beside its classifier's: a generated set scored in every feature space by
the scoring job (`jobs/scoring.py`) on the trial's workers, or the real row's numbers, made once with the sweep's
references."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from distgan.config import SweepConfig
from distgan.experiments.artifacts import SweepArtifacts
from distgan.experiments.classifier import score_alone
from distgan.experiments.synthetic import SweepGenerator
from distgan.jobs.classifier import read_scores
from distgan.jobs.scoring import ScoringJob, read_quality, read_real_row
from distgan.jobs.stages import read_stages
from distgan.layout import LOSSES_FILE, set_quality
from distgan.runtime.atomic import atomic_path, build_cached_dir, locked_if_free, maker_lock
from distgan.runtime.hashing import digest


def scoring_job(
    cfg: SweepConfig, artifacts: SweepArtifacts, synthetic_dir: Path, trial_dir: Path, *, tsne: bool = False
) -> ScoringJob:
    """The scoring of the generated set in synthetic_dir, into the trial directory: its numbers in every feature space,
    its GAN-test accuracy (the real-data classifier tested on it, Shmelkov et al.), its sample grid and, with `tsne`,
    a t-SNE of it against the real side."""
    return ScoringJob(
        spaces=artifacts.spaces,
        references=artifacts.references,
        synthetic_dir=synthetic_dir,
        classifier=cfg.classifier,
        out_dir=trial_dir,
        tsne_seed=cfg.sample.seed if tsne else None,
    )


@contextmanager
def scored_once(cfg: SweepConfig, scoring: ScoringJob) -> Iterator[ScoringJob | None]:
    """A generated set's numbers do not depend on the classifier trained on it: the trials that train on one set (a
    compare sweep's seeds, the augmentation fractions of a knob value) score it once, into a cache beside the set,
    and each copies the numbers into its directory. Yields the scoring job for this trial's chain, writing into the
    cache, when no other trial has scored the set or is scoring it; else None: this trial trains meanwhile, then
    waits for that trial, and scores the set alone if that trial failed."""
    # What determines the numbers: the set, the spaces and their real sides, the t-SNE (not the classifier's seed).
    key = digest(scoring.spaces, {name: str(path) for name, path in scoring.references.items()}, scoring.tsne_seed)
    cached = set_quality(scoring.synthetic_dir, key)
    with locked_if_free(maker_lock(cached)) as free:
        if free and not cached.exists():
            with atomic_path(cached) as tmp:
                tmp.mkdir()
                yield replace(scoring, out_dir=tmp)
        else:
            yield None
    build_cached_dir(cached, lambda tmp: score_alone(cfg, replace(scoring, out_dir=tmp)))
    shutil.copytree(cached, scoring.out_dir, dirs_exist_ok=True)


def synthetic_quality(synthetic_dir: Path, trial_dir: Path) -> tuple[dict, dict]:
    """(what the scoring job wrote — `quality` in every feature space, `gan_test_accuracy`, `sampling` — and the
    stages that made the set and its numbers: its sampling job's and its scoring job's)."""
    return read_quality(trial_dir), read_stages(synthetic_dir, ("sample",)) | read_stages(trial_dir, ("score",))


def real_quality(artifacts: SweepArtifacts) -> dict:
    """The real row's numbers in every feature space, and GAN-test of real data: the real-data classifier on the
    real test split."""
    gan_test = 1 - read_scores(artifacts.extractor_path.parent)["top1_error"]
    quality = {name: read_real_row(directory) for name, directory in artifacts.references.items()}
    return {"quality": quality, "gan_test_accuracy": gan_test}


def copy_loss_curves(generator: SweepGenerator, trial_dir: Path) -> None:
    """The GAN job's losses.csv, from beside its generator.pt into the trial directory (atomically), if it has one."""
    losses = None if generator.config.weights is None else generator.config.weights.parent / LOSSES_FILE
    if losses is not None and losses.is_file():
        with atomic_path(trial_dir / LOSSES_FILE, suffix=".csv") as tmp:
            shutil.copyfile(losses, tmp)
