"""The data layer's check of the names a config picks from it: `--data.source` registered (data/sources.py)."""

from distgan.config import DataConfig
from distgan.data.sources import SOURCES


def check_data(data: DataConfig) -> None:
    """ConfigError naming --data.source and its choices unless the source is registered."""
    SOURCES.get_or_raise(data.source)
