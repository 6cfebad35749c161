"""What a classification trial trains on, and its classifier: trained on the trial's workers, tested on the real
test split."""

import logging
from dataclasses import dataclass
from pathlib import Path

from distgan.config import SweepConfig
from distgan.experiments.artifacts import SweepArtifacts
from distgan.jobs.chain import JobChain, chain_worker
from distgan.jobs.classifier import ClassifierJob, classifier_worker, read_scores
from distgan.jobs.placement import trial_jobs
from distgan.jobs.scoring import ScoringJob, scoring_worker
from distgan.train.launch import run_data_parallel

log = logging.getLogger("distgan")


@dataclass(frozen=True)
class TrainingSet:
    """The real split, images generated at a knob value (τ, guidance; None for a generator without knob), or the real
    split plus round(fraction·N) generated images (augmentation)."""

    experiment: str  # replacement | augmentation | gan-test | gan
    real: bool
    knob_value: float | None = None
    fraction: float | None = None
    generator: str | None = None  # compare: the generator's name in --generators

    @property
    def kind(self) -> str:
        if self.real:
            return "real"
        return "real+synthetic" if self.fraction else "synthetic"


def classifier_scores(
    cfg: SweepConfig,
    train_dir: Path,
    artifacts: SweepArtifacts,
    trial_dir: Path,
    *,
    to_tune: bool,
    scoring: ScoringJob | None = None,
) -> dict:
    """Train cfg.classifier on train_dir on the trial's workers and test it on the real test split; with `scoring`,
    that job first, on the same workers (one worker group for both). `to_tune`: the classifier's epochs' reports
    reach Ray Tune (not in a gan trial, whose ASHA reads only its rungs' reports)."""
    job = ClassifierJob(
        classifier=cfg.classifier,
        engine=cfg.engine,
        train_dir=train_dir,
        test_dir=artifacts.real_test_dir,
        out_dir=trial_dir,
        on_bad_sample=cfg.data.on_bad_sample,
    )
    steps = ((scoring_worker, scoring),) if scoring is not None else ()
    chain = JobChain(steps=(*steps, (classifier_worker, job)))
    run_data_parallel(chain_worker, chain, launch=trial_jobs(cfg, to_tune=to_tune), name=f"trial-{trial_dir.name}")
    scores = read_scores(trial_dir)
    if scores["resumed_from_step"] is not None:  # e.g. a retry of a trial whose worker died
        log.info(
            "classifier job of %s resumed from its checkpoint at step %d and trained %d more steps",
            trial_dir.name, scores["resumed_from_step"], scores["num_steps_trained"],
        )  # fmt: skip
    return scores


def score_alone(cfg: SweepConfig, scoring: ScoringJob) -> None:
    """The scoring job without a classifier after it (a gan trial's rung that ASHA may stop)."""
    run_data_parallel(scoring_worker, scoring, launch=trial_jobs(cfg), name=f"score-{scoring.out_dir.name}")
