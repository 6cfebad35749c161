"""What a classification trial trains on, and its classifier: trained on the trial's workers, tested on the real
test split."""

import logging
from dataclasses import dataclass
from pathlib import Path

from distgan.config import SweepConfig
from distgan.experiments.artifacts import SweepArtifacts
from distgan.jobs.classifier import ClassifierJob, classifier_worker, read_scores
from distgan.jobs.placement import trial_jobs
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

    @property
    def kind(self) -> str:
        if self.real:
            return "real"
        return "real+synthetic" if self.fraction else "synthetic"


def classifier_scores(
    cfg: SweepConfig, train_dir: Path, artifacts: SweepArtifacts, trial_dir: Path, *, to_tune: bool
) -> dict:
    """Train cfg.classifier on train_dir on the trial's workers and test it on the real test split. `to_tune`: its
    epochs' reports reach Ray Tune (not in a gan trial, whose ASHA reads only its rungs' reports)."""
    job = ClassifierJob(
        classifier=cfg.classifier,
        engine=cfg.engine,
        train_dir=train_dir,
        test_dir=artifacts.real_test_dir,
        out_dir=trial_dir,
        on_bad_sample=cfg.data.on_bad_sample,
    )
    run_data_parallel(
        classifier_worker, job, launch=trial_jobs(cfg, to_tune=to_tune), name=f"classifier-{trial_dir.name}"
    )
    scores = read_scores(trial_dir)
    if scores["resumed_from_step"] is not None:  # e.g. a retry of a trial whose worker died
        log.info(
            "classifier job of %s resumed from its checkpoint at step %d and trained %d more steps",
            trial_dir.name, scores["resumed_from_step"], scores["num_steps_trained"],
        )  # fmt: skip
    return scores
