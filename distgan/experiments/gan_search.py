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
from distgan.experiments.classification import (
    TrainingSet,
    classifier_scores,
    copy_loss_curves,
    finite_scalars,
    result_record,
    synthetic_quality,
)
from distgan.experiments.generated import prepare_synthetic_shards, trained_gan
from distgan.experiments.workers import GanJob, gan_worker
from distgan.runtime.atomic import write_json_atomic
from distgan.schema import RESULT_NAME
from distgan.train.launch import Launch, run_data_parallel

NOT_TRAINED = {"top1_error": None, "top5_error": None, "per_class_accuracy": None}


def rung_ends(iterations: int, rungs: int) -> list[int]:
    """The G iterations after which the trial is evaluated: multiples of iterations // rungs, then the end."""
    step = iterations // rungs
    return sorted({step * k for k in range(1, rungs)} | {iterations})


def trained_iterations(gan_dir: Path) -> int:
    """G iterations of the generator.pt in gan_dir (0 if none): where a retried trial goes on from."""
    info = gan_dir / "training.json"
    return json.loads(info.read_text())["num_g_steps"] if info.is_file() else 0


def run_gan_search_trial(
    cfg: SweepConfig, artifacts: SweepArtifacts, gan: GanConfig, *, trial_dir: Path, launch: Launch
) -> dict:
    """Train `gan` rung by rung, reporting each rung's scores to Tune; returns the last result."""
    started = time.time()
    gan_dir = trial_dir / "gan"
    ends = rung_ends(gan.iterations, cfg.rungs)
    # Checkpoints at every rung boundary (and the user's cadence if finer): a retry loses at most a segment.
    every = min(filter(None, (ends[0], cfg.engine.checkpoint_every_steps)))
    engine = replace(cfg.engine, checkpoint_every_steps=every)
    training = TrainingSet(experiment="gan", real=False, knob_value=cfg.sample.truncation)
    for end in ends:
        if trained_iterations(gan_dir) < end:
            segment = replace(gan, iterations=end)
            job = GanJob(gan=segment, engine=engine, train_dir=artifacts.real_train_dir, out_dir=gan_dir)
            run_data_parallel(gan_worker, job, launch=launch, name=f"gan-{trial_dir.name}-{end}")
        generator = trained_gan(gan_dir / "generator.pt", gan)
        synthetic_dir = prepare_synthetic_shards(
            cfg, artifacts.real_train_dir, generator, training.knob_value, launch, root=trial_dir / "samples"
        )
        last = end == gan.iterations
        # A t-SNE costs seconds of a CPU core: one, of the generator the trial ends with, not one per rung. A trial
        # ASHA stops has its loss curves so far, and no t-SNE.
        quality = synthetic_quality(cfg, artifacts, synthetic_dir, trial_dir, views_of=generator if last else None)
        copy_loss_curves(generator, trial_dir)
        if last or cfg.scheduler_metric == "gan_train_accuracy":
            scores = classifier_scores(cfg, synthetic_dir, artifacts, trial_dir, launch)
        else:
            scores = NOT_TRAINED
        result = result_record(
            cfg,
            artifacts,
            training,
            generator=generator,
            train_dir=synthetic_dir,
            scores=scores,
            quality=quality,
            trial_dir=trial_dir,
            launch=launch,
            started=started,
        ) | {"gan_iterations_done": end, "stopped_early": not last}  # stays true if ASHA stops it here
        write_json_atomic(trial_dir / RESULT_NAME, result)
        tune.report(finite_scalars(result) | {"gan_iterations": end, "done": last})
    return result
