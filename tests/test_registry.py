"""Every registry follows one pattern: duplicates and non-callables refused, unknown names named with the flag and
its choices, and the CLI's choices taken from the same dict."""

import pytest

from distgan.cli import build_parser
from distgan.data.sources import SOURCES
from distgan.errors import ConfigError
from distgan.experiments.spaces import SPACES
from distgan.generators import GENERATORS
from distgan.metrics import extractor_registry
from distgan.metrics.engine import METRICS
from distgan.metrics.extractors import EXTRACTORS
from distgan.models.classifiers import CLASSIFIERS
from distgan.models.gan import GAN_ARCHS
from distgan.models.gans.losses import GAN_LOSSES
from distgan.recipes import RECIPES
from distgan.runtime.registry import Registry

REGISTRIES = {
    "--data.source": SOURCES,
    "--classifier.arch": CLASSIFIERS,
    "--extractor": EXTRACTORS,
    "--space": SPACES,
    "--recipe": RECIPES,
    "--gan.arch": GAN_ARCHS,
    "--gan.loss": GAN_LOSSES,
    "--generator.kind": GENERATORS,
    "--metrics": METRICS,
}


@pytest.mark.parametrize("flag", REGISTRIES)
def test_each_registry_refuses_duplicates_non_callables_and_unknown_names(flag):
    registry = REGISTRIES[flag]
    assert isinstance(registry, Registry) and registry.flag == flag and len(registry) >= 2
    name = next(iter(registry))
    with pytest.raises(ValueError, match=f"{name!r} is already registered"):
        registry.add(name, registry[name])
    with pytest.raises(TypeError, match="must be callable"):
        Registry("thing", "--thing").add("x", 3)
    with pytest.raises(ConfigError, match=rf"^{flag} must be one of \[.*\] \(got 'nonsense'\)$"):
        registry.get_or_raise("nonsense")


def test_cli_choices_come_from_the_registries():
    stages = build_parser()._subparsers._group_actions[0].choices
    assert stages["prepare"]._actions[1].choices == sorted(SOURCES)
    extractor = next(a for a in stages["metrics"]._actions if a.dest == "extractor")
    assert extractor.choices == sorted(EXTRACTORS)


def test_extractor_builders_register_into_the_leaf_registry():
    """Each builder module registers its extractors into extractor_registry (which imports none of them), as the
    generator kinds register into generators/registry.py; importing metrics.extractors brings them all."""
    assert EXTRACTORS is extractor_registry.EXTRACTORS
    modules = {name: builder.__module__ for name, builder in EXTRACTORS.items()}
    assert modules == {
        "inception": "distgan.metrics.inception",
        "dinov2": "distgan.metrics.vision_transformers",
        "clip": "distgan.metrics.vision_transformers",
        "domain": "distgan.metrics.extractors",
    }
