"""One check of a config against every layer's names, run at every entry point before any work: the sweep (after
its config is parsed, and at the top of `distgan.sweep.run`), each `distgan` CLI stage (its own sections).

The config itself checks ranges and the rules between its fields (config.py); each layer checks the names a field
picks from its registries, here all in one place.
"""

from collections.abc import Callable
from typing import TypeVar

from distgan.config import (
    ClassifierConfig,
    DataConfig,
    EngineConfig,
    GanConfig,
    GeneratorConfig,
    SampleConfig,
    SweepConfig,
)
from distgan.data.checks import check_data
from distgan.generators.registry import check_generator
from distgan.models.checks import check_classifier, check_gan, check_sample
from distgan.train.checks import check_engine, check_resources

Section = TypeVar("Section")
SECTION_CHECKS: dict[type, Callable] = {
    DataConfig: check_data,
    GanConfig: check_gan,
    GeneratorConfig: check_generator,
    SampleConfig: check_sample,
    ClassifierConfig: check_classifier,
    EngineConfig: check_engine,
}


def validate_section(section: Section) -> Section:
    """One config section of a CLI stage (`GanConfig`, `EngineConfig`, ...) checked by its layer; returned as is."""
    SECTION_CHECKS[type(section)](section)
    return section


def validate(cfg: SweepConfig) -> SweepConfig:
    """cfg checked by every layer (a one-line ConfigError naming the flag otherwise); returned as is."""
    # Imported here, not with the module: the CLI stages, which validate sections only, need not pay for Ray Tune
    # (the spaces) and the metrics' dependencies at start.
    from distgan.experiments.spaces import check_space
    from distgan.metrics.checks import check_metrics

    for section in (cfg.data, cfg.gan, cfg.generator, cfg.sample, cfg.classifier, cfg.engine):
        validate_section(section)
    check_metrics(cfg.metrics)
    if cfg.generator.trained_by_the_sweep:  # its GAN makes images of the data's size (a user's is fitted to it)
        check_gan(cfg.gan, image_size=cfg.data.image_size)
    check_resources(cfg)
    check_space(cfg)
    return cfg
