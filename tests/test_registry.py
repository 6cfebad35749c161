"""Every registry follows one pattern: duplicates and non-callables refused, unknown names named with the flag and
its choices, and the CLI's choices taken from the same dict."""

import pytest

from distgan.cli import build_parser
from distgan.data.sources import SOURCES
from distgan.errors import ConfigError
from distgan.experiments.spaces import SPACES
from distgan.metrics.extractors import EXTRACTORS
from distgan.models.classifiers import CLASSIFIERS
from distgan.recipes import RECIPES
from distgan.runtime.registry import Registry

REGISTRIES = {
    "--data.source": SOURCES,
    "--classifier.arch": CLASSIFIERS,
    "--extractor": EXTRACTORS,
    "--space": SPACES,
    "--recipe": RECIPES,
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
