"""Sweep spaces: one readable declaration each, registered by name (the choices of `--space`)."""

from collections.abc import Callable

from ray import tune

from distgan.config import SweepConfig

Space = Callable[[SweepConfig], dict]
SPACES: dict[str, Space] = {}


def register_space(name: str) -> Callable[[Space], Space]:
    def add(space: Space) -> Space:
        if name in SPACES:
            raise ValueError(f"space {name!r} is registered twice")
        SPACES[name] = space
        return space

    return add


@register_space("replacement")
def replacement(cfg: SweepConfig) -> dict:
    """Ravuri & Vinyals Table 1: a classifier per truncation τ trained on generated data, plus the real row."""
    points = [{"truncation": tau} for tau in cfg.truncations]
    if cfg.include_real:
        points.insert(0, {"truncation": None})
    return {"trial": tune.grid_search(points)}
