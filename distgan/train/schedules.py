"""Schedules as data: the GAN's D:G step ratio over iterations, and the classifier's learning rate."""

import math
from collections.abc import Sequence

import torch

from distgan.config import ClassifierConfig, DStepsSchedule


def d_steps_at(schedule: DStepsSchedule, iteration: int) -> int:
    """D steps to take before the G step of this (0-based) G iteration."""
    return next(steps for start, steps in reversed(schedule) if iteration >= start)


def goyal_learning_rate(base_lr: float, global_batch_size: int, reference_batch_size: int) -> float:
    """Linear scaling rule of Goyal et al. (2017): lr = base_lr · batch / reference batch (256)."""
    return base_lr * global_batch_size / reference_batch_size


def lr_multiplier(
    step: int, *, total_steps: int, warmup_steps: int, decay_fractions: Sequence[float], decay_factor: float = 0.1
) -> float:
    """Factor on the peak LR at a (0-based) optimiser step: linear warmup, then ×0.1 at each decay point.

    Warmup rises linearly from 0 at step 0 to 1 at step warmup_steps (Ravuri & Vinyals: "linearly increasing
    from 0.0" over 5 of 90 epochs; Goyal et al. §2.2); the decay points are fractions of the run, e.g.
    (30/90, 60/90, 80/90) for the paper's epochs 30/60/80 of 90.
    """
    if step < warmup_steps:
        return step / warmup_steps
    num_decays = sum(step >= math.floor(frac * total_steps) for frac in decay_fractions)
    return decay_factor**num_decays


def classifier_lr_schedule(
    optimizer, cfg: ClassifierConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The classifier's schedule on `optimizer` (whose lr is the peak): `lr_multiplier` over cfg.epochs."""
    total_steps = steps_per_epoch * cfg.epochs
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_multiplier(
            step,
            total_steps=total_steps,
            warmup_steps=round(cfg.warmup_fraction * total_steps),
            decay_fractions=cfg.decay_epoch_fractions,
        ),
    )
