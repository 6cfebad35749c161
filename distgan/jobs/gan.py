"""The GAN job: train a class-conditional GAN on real shards, data-parallel; rank 0 writes its generator."""

from dataclasses import dataclass
from pathlib import Path

from distgan.config import EngineConfig, GanConfig
from distgan.data.shards import read_shards
from distgan.layout import CHECKPOINTS_DIR, GENERATOR_FILE, LOSSES_FILE, TRAINING_FILE
from distgan.runtime import distributed
from distgan.runtime.atomic import write_json_atomic
from distgan.train.gan import resolved_gan, save_generator, train_gan, write_loss_curves
from distgan.train.launch import report


@dataclass(frozen=True, kw_only=True)
class GanJob:
    """Train `gan` on the real shards in train_dir; write generator.pt, losses.csv and training.json to out_dir."""

    gan: GanConfig
    engine: EngineConfig
    train_dir: Path  # real training shards
    out_dir: Path  # outputs (and checkpoints/, when the engine checkpoints)
    progress: bool = True  # a progress bar on rank 0


def gan_worker(job: GanJob) -> None:
    """Train the conditional GAN on real shards; rank 0 saves generator.pt, losses.csv (every iteration's losses,
    docs/gans.md) and training.json (step counts, the losses every LOG_EVERY iterations)."""
    # Each rank its contiguous share of the (class-shuffled) real shards: its batches are drawn from it.
    real = read_shards(job.train_dir, rank=distributed.rank(), world_size=distributed.world_size())
    checkpoint_dir = job.out_dir / CHECKPOINTS_DIR if job.engine.checkpoint_every_steps else None
    generator, info = train_gan(
        job.gan, real, engine_cfg=job.engine, checkpoint_dir=checkpoint_dir, progress=job.progress
    )
    curves = info.pop("loss_curves")
    if distributed.rank() == 0:
        out_dir = job.out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        _, height, _, channels = real.images_NHWC.shape
        # The config with the loss's defaults filled in (schedule, betas): what trained this generator.
        save_generator(out_dir / GENERATOR_FILE, generator, resolved_gan(job.gan), image_size=height, channels=channels)
        write_loss_curves(out_dir / LOSSES_FILE, curves)
        write_json_atomic(out_dir / TRAINING_FILE, info)
    report({"num_d_steps": info["num_d_steps"], "num_g_steps": info["num_g_steps"]})
