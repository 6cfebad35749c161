"""The exponential moving average of the generator's weights that BigGAN samples from (Brock et al. 2019, after
Karras et al. 2018 and Yazıcı et al. 2019; decay 0.9999 at ImageNet scale, started at iteration 20,000 in
BigGAN-PyTorch).

It follows the G that the engine steps; the training loop checkpoints it beside the engines (it has their
`save`/`load`), and its module is what generator.pt holds.
"""

import copy
from pathlib import Path

import torch
from torch import nn

from distgan.runtime import distributed
from distgan.runtime.atomic import load_plain


class GeneratorAverage:
    """`module`: a copy of G whose every floating-point tensor (weights, and batch-norm and spectral-norm
    statistics, as BigGAN-PyTorch's `ema`) is the moving average of G's; the other buffers are G's."""

    def __init__(self, generator: nn.Module, *, decay: float, start: int):
        self.module = copy.deepcopy(generator).requires_grad_(False).eval()
        self.decay, self.start = decay, start

    def decay_at(self, iteration: int) -> float:
        """The decay after G iteration `iteration` (0-based): 0 (a copy of G) before `start`, then `decay` capped
        at (1 + t)/(10 + t), t iterations after `start`, so that a short run's average does not hold its
        first weights for ~1/(1 − decay) iterations (tf.train.ExponentialMovingAverage's num_updates)."""
        since = iteration - self.start
        return 0.0 if since < 0 else min(self.decay, (1 + since) / (10 + since))

    @torch.no_grad()
    def update(self, generator: nn.Module, iteration: int) -> None:
        """average ← decay·average + (1 − decay)·G, after G iteration `iteration`."""
        weight = 1 - self.decay_at(iteration)
        for average, value in zip(self.module.state_dict().values(), generator.state_dict().values(), strict=True):
            if average.is_floating_point():
                average.lerp_(value, weight)
            else:
                average.copy_(value)

    def save(self, directory: Path) -> None:
        """Equal on every rank (it follows the same G): rank 0 writes it."""
        if distributed.rank() == 0:
            directory.mkdir(parents=True, exist_ok=True)
            torch.save(self.module.state_dict(), directory / "average.pt")

    def load(self, directory: Path) -> None:
        self.module.load_state_dict(load_plain(directory / "average.pt"))
