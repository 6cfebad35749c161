"""The gan space's trial: one GAN with this trial's hyperparameters, trained in segments as
data-parallel jobs, evaluated at the end of each segment (a rung of ASHA, which may stop it there).

Each evaluation samples the generator at cfg.sample.truncation and reports IS, FID and GAN-test to
Ray Tune; GAN-train (a classifier trained on the samples, tested on real data) is reported at the
last rung, and at every rung when ASHA ranks by it. The trial keeps what the NYU study read, for the report to
draw: the GAN's losses.csv (at every rung) and, at the last, a t-SNE of real against generated features (tsne.csv).
The GAN checkpoints at every rung boundary in the trial directory, so a retried trial resumes from its last
finished segment.
"""

import json
import time
from dataclasses import replace
from pathlib import Path

from ray import tune

from distgan.config import GanConfig, SweepConfig
from distgan.experiments.artifacts import SweepArtifacts
from distgan.experiments.classifier import TrainingSet, classifier_scores, score_alone
from distgan.experiments.record import finite_scalars, result_record
from distgan.experiments.scoring import copy_loss_curves, scoring_job, synthetic_quality
from distgan.experiments.spaces import rung_ends
from distgan.experiments.synthetic import prepare_synthetic_shards, trained_gan
from distgan.jobs.gan import GanJob, gan_worker
from distgan.jobs.placement import trial_jobs
from distgan.layout import GAN_DIR, GENERATOR_FILE, RESULT_FILE, TRAINING_FILE, TRIAL_SAMPLES_DIR
from distgan.runtime.atomic import write_json_atomic
from distgan.train.launch import run_data_parallel

NOT_TRAINED = {"top1_error": None, "top5_error": None, "per_class_accuracy": None}


def trained_iterations(gan_dir: Path) -> int:
    """G iterations of the generator.pt in gan_dir (0 if none): where a retried trial goes on from."""
    info = gan_dir / TRAINING_FILE
    return json.loads(info.read_text())["num_g_steps"] if info.is_file() else 0


def run_gan_trial(cfg: SweepConfig, artifacts: SweepArtifacts, gan: GanConfig, *, trial_dir: Path) -> dict:
    """Train `gan` rung by rung on the trial's workers, reporting each rung's scores to Tune; returns the last
    result."""
    started = time.time()
    gan_dir = trial_dir / GAN_DIR
    ends = rung_ends(gan.iterations, cfg.rungs)
    # Checkpoints at every rung boundary (and the user's cadence if finer): a retry loses at most a segment.
    every = min(filter(None, (ends[0], cfg.engine.checkpoint_every_steps)))
    engine = replace(cfg.engine, checkpoint_every_steps=every)
    training = TrainingSet(experiment="gan", real=False, knob_value=cfg.sample.truncation)
    for end in ends:
        if trained_iterations(gan_dir) < end:
            segment = replace(gan, iterations=end)
            job = GanJob(gan=segment, engine=engine, train_dir=artifacts.real_train_dir, out_dir=gan_dir)
            run_data_parallel(gan_worker, job, launch=trial_jobs(cfg), name=f"gan-{trial_dir.name}-{end}")
        generator = trained_gan(gan_dir / GENERATOR_FILE, gan)
        synthetic_dir = prepare_synthetic_shards(
            cfg, artifacts.real_train_dir, generator, training.knob_value, root=trial_dir / TRIAL_SAMPLES_DIR
        )
        last = end == gan.iterations
        # A t-SNE costs seconds of a CPU core: one, of the generator the trial ends with, not one per rung. A trial
        # ASHA stops has its loss curves so far, and no t-SNE.
        scoring = scoring_job(cfg, artifacts, synthetic_dir, trial_dir, tsne=last)
        if last or cfg.scheduler_metric == "gan_train_accuracy":
            scores = classifier_scores(cfg, synthetic_dir, artifacts, trial_dir, to_tune=False, scoring=scoring)
        else:
            score_alone(cfg, scoring)
            scores = NOT_TRAINED
        quality, stages = synthetic_quality(synthetic_dir, trial_dir)
        copy_loss_curves(generator, trial_dir)
        result = result_record(
            cfg,
            artifacts,
            training,
            generator=generator,
            train_dir=synthetic_dir,
            scores=scores,
            quality=quality,
            stages=stages,
            trial_dir=trial_dir,
            started=started,
        ) | {"gan_iterations_done": end, "stopped_early": not last}  # stays true if ASHA stops it here
        write_json_atomic(trial_dir / RESULT_FILE, result)
        tune.report(finite_scalars(result) | {"gan_iterations": end, "done": last})
    return result
