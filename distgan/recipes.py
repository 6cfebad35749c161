"""Named sweep recipes (STYLE §3): functions returning a full config; variants derive from a base."""

from collections.abc import Callable
from dataclasses import replace

from distgan.config import SweepConfig
from distgan.runtime.registry import Registry


def digits_default() -> SweepConfig:
    """The main job offline: digits at 16×16, ResNet-20, the paper's 8 truncations (wall times: docs/quickstart.md)."""
    return SweepConfig()


def digits_quick() -> SweepConfig:
    """A smoke sweep for tests: 2 truncations, short GAN and classifier runs."""
    base = digits_default()
    return replace(
        base,
        name="replacement-digits-quick",
        truncations=(0.5, 1.0),
        gan=replace(base.gan, iterations=300),
        classifier=replace(base.classifier, epochs=4),
        metrics=replace(base.metrics, extractor_epochs=4, kid_subsets=10),
    )


RECIPES: Registry[Callable[[], SweepConfig]] = Registry("recipe", "--recipe")
RECIPES.add("digits_default", digits_default)
RECIPES.add("digits_quick", digits_quick)
