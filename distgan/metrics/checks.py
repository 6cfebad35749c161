"""The metrics layer's check of the names a config picks from it: extractors and metrics registered, and the
weights file of each feature space that needs one given."""

from distgan.config import MetricsConfig
from distgan.errors import ConfigError
from distgan.metrics.engine import METRICS
from distgan.metrics.extractors import EXTRACTORS

SPACES_WITH_WEIGHTS = ("dinov2", "clip")  # the feature spaces that need --metrics.<space>-weights (no download)


def check_metrics(metrics: MetricsConfig) -> None:
    """ConfigError naming the flag on an unregistered extractor or metric, or a space without its weights."""
    for extractor in metrics.extractors:
        if extractor not in EXTRACTORS:
            raise ConfigError(f"--metrics.extractors must be a list of {sorted(EXTRACTORS)} (got {extractor!r})")
    for metric in metrics.metrics:
        if metric not in METRICS:
            raise ConfigError(f"--metrics.metrics must be a list of {list(METRICS)} (got {metric!r})")
    for space in SPACES_WITH_WEIGHTS:
        if space in metrics.extractors and metrics.weights_of(space) is None:
            raise ConfigError(f"--metrics.{space}-weights must be given with --metrics.extractors {space} (got None)")
