"""The classifier loop: momentum SGD, Goyal warmup and ÷10 steps, data-parallel over any world size.

Used for the replacement trials (train on generated or real images, test on real ones), for
GAN-test, and to train the offline domain feature extractor of IS / FID.
"""

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from distgan.config import ClassifierConfig, EngineConfig
from distgan.errors import TrainingError
from distgan.metrics.classification import ClassificationCounts
from distgan.models.classifiers import Classifier, build_classifier
from distgan.profiling import StepTimer
from distgan.runtime import distributed
from distgan.train.batches import TrainingData, evaluation_batches, split_info, training_batches
from distgan.train.checkpoint import load_training_checkpoint, save_training_checkpoint
from distgan.train.engine import build_engine
from distgan.train.schedules import classifier_lr_schedule, goyal_learning_rate


def train_classifier(
    cfg: ClassifierConfig,
    train: TrainingData,
    *,
    num_classes: int,
    engine_cfg: EngineConfig | None = None,
    checkpoint_dir: Path | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    timer: StepTimer | None = None,
) -> Classifier:
    """Train cfg.arch on `train` on this rank's share; returns the plain (unwrapped) model.

    `train` is an ImageSplit (decoded in memory) or a batches.ShardSource (streamed from shards each epoch,
    augmented by the pipeline); `batches.open_split` picks one by `cfg.loader`.

    With `checkpoint_dir` and `engine_cfg.checkpoint_every_steps`, checkpoints are written there and a
    run that finds one resumes from it exactly (weights, optimizer, schedule, RNG, data position).
    `timer` (profiling) splits every step's time into waiting for data and computing.
    """
    engine_cfg = engine_cfg or EngineConfig()
    device = distributed.select_device()
    timer = timer or StepTimer()  # host time only; a profiled run passes one that syncs the GPU
    world = distributed.world_size()
    distributed.seed_everything(cfg.seed)  # identical initial weights on every rank
    num_samples, in_channels, _ = split_info(train)
    module = build_classifier(cfg.arch, in_channels, num_classes)

    accum = engine_cfg.grad_accum_steps
    micro_batch = max(1, cfg.batch_size // (world * accum))
    step_samples = micro_batch * accum  # per rank and optimizer step
    peak_lr = goyal_learning_rate(cfg.base_lr, step_samples * world, cfg.reference_batch_size)
    steps_per_epoch = math.ceil(math.ceil(num_samples / world) / step_samples)
    optimizer = torch.optim.SGD(module.parameters(), lr=peak_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = classifier_lr_schedule(optimizer, cfg, steps_per_epoch)
    engine = build_engine(module, optimizer, scheduler, engine_cfg, device=device, micro_batch_size=micro_batch)
    batches = training_batches(train, cfg, step_samples=step_samples, micro_batch=micro_batch, device=device)
    assert batches.steps_per_epoch == steps_per_epoch

    first_epoch, first_step, resumed_loss_sum = 0, 0, 0.0
    resumed = load_training_checkpoint(checkpoint_dir, {"classifier": engine})
    if resumed is not None:
        position, rank_state = resumed
        first_epoch, first_step, resumed_loss_sum = position["epoch"], position["step"], position["loss_sum"]
        batches.restore(rank_state)

    for epoch in range(first_epoch, cfg.epochs):
        engine.model.train()
        start = first_step if epoch == first_epoch else 0
        loss_sum = torch.full((), resumed_loss_sum if epoch == first_epoch else 0.0, dtype=torch.float64, device=device)
        epoch_batches = batches.epoch(epoch, start)
        for step in range(start, steps_per_epoch):
            # Fetch data: this rank's samples of the step, as accumulation micro-batches.
            with timer.data():
                micro_batches = next(epoch_batches)
            # Forward, backward, update.
            with timer.compute():
                loss_sum += engine.train_step(micro_batches, batches.loss_fn)
            # Checkpoint.
            global_step = epoch * steps_per_epoch + step + 1
            every = engine_cfg.checkpoint_every_steps
            if checkpoint_dir is not None and every and global_step % every == 0:
                save_training_checkpoint(
                    checkpoint_dir,
                    global_step,
                    {"classifier": engine},
                    position={"epoch": epoch, "step": step + 1, "loss_sum": loss_sum.item()},
                    rank_state=batches.state(),
                )
        for _ in epoch_batches:  # ends the epoch: a stream loader checks its batch count, DALI resets
            raise AssertionError("more batches than steps")
        # Log: one host sync per epoch; a NaN anywhere in the epoch survives into the sum.
        if distributed.is_distributed():
            torch.distributed.all_reduce(loss_sum)
        mean_loss = loss_sum.item() / (steps_per_epoch * world)
        if not math.isfinite(mean_loss):
            raise TrainingError(f"classifier loss is {mean_loss} in epoch {epoch} ({cfg.arch}, lr {peak_lr:g})")
        if on_epoch_end is not None:
            on_epoch_end(epoch, {"epoch": epoch, "train_loss": mean_loss, "lr": scheduler.get_last_lr()[0]})
    return engine.module


@torch.no_grad()
def evaluate_classifier(model: nn.Module, test: TrainingData, batch_size: int = 500) -> dict:
    """Top-1/Top-5 error and per-class accuracy on `test` (in memory or streamed), each rank scoring a
    disjoint share."""
    device = next(model.parameters()).device
    model.eval()
    counts = ClassificationCounts.empty(len(split_info(test)[2]))
    for images, labels in evaluation_batches(test, batch_size):
        counts.update(model(images.to(device)), labels)
    counts.all_reduce()
    return counts.scores()
