"""The compare space's generators (`--space compare --generators FILE.yaml`, docs/compare.md): a file that maps a name
to a generator section — the fields of `generator:`, an optional `knob_values` list and, for `kind: distgan` without
weights, an optional `gan:` section (the GAN its trials train, once, cached as the sweep's own GAN is).

The file is read and checked at every entry point (`check_compare`: names, kinds, fields, GAN sections); each
generator is then opened once on the driver before Ray starts, its contract probed on two images and its knob values
set, as a single sweep's generator is (`resolve_generators`, through `synthetic.resolve_generator`).
"""

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from distgan.config import GanConfig, GeneratorConfig, SweepConfig
from distgan.errors import ConfigError, DistganError
from distgan.experiments.synthetic import SweepGenerator, resolve_generator
from distgan.flags import with_overrides
from distgan.generators.registry import check_generator
from distgan.metrics.memorisation import CT_MIN_FAKES
from distgan.models.checks import check_gan

COMPARE = "compare"  # the space's name (`--space compare`)
MEMORISATION = ("copy", "authpct", "ct")  # scored for every set of a compare sweep, in every feature space
ENTRY_FIELDS = ("knob_values", "gan")  # a section's fields beside those of `generator:`
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a name starts its trials' directory names


@dataclass(frozen=True)
class GeneratorEntry:
    """One section of the file, checked: the generator's flags, its knob values (() for its own) and its GAN."""

    name: str
    generator: GeneratorConfig
    knob_values: tuple[float, ...]
    gan: GanConfig  # the sweep's --gan with the section's `gan:` fields (used by kind distgan without weights)


@dataclass(frozen=True)
class ComparedGenerator:
    """A generator of the comparison, opened and probed on the driver: what its trials sample."""

    name: str
    knob: str | None
    knob_values: tuple[float | None, ...]
    generator: SweepGenerator | None  # None: a GAN of distgan's, trained from `gan` by the first trial wanting it
    gan: GanConfig


def check_compare(cfg: SweepConfig) -> None:
    """ConfigError unless --space compare and --generators come together and the file reads (`read_generators`)."""
    if cfg.space != COMPARE:
        raise ConfigError(f"--generators: read by --space compare only (got --space {cfg.space})")
    if cfg.generators is None:
        raise ConfigError("--space compare needs --generators FILE.yaml: a name → generator section (docs/compare.md)")
    if 0 < cfg.metrics.num_images < CT_MIN_FAKES:
        raise ConfigError(f"--metrics.num-images: the compare space's C_T needs at least {CT_MIN_FAKES} images of "
                          f"each set (got {cfg.metrics.num_images}; 0: all)")  # fmt: skip
    read_generators(cfg)


def read_generators(cfg: SweepConfig) -> list[GeneratorEntry]:
    """The sections of cfg.generators, each checked; ConfigError naming the file, the generator and the field."""
    path = cfg.generators
    if not path.is_file():
        raise ConfigError(f"--generators: {path} not found")
    try:
        text = path.read_text()
        spec, node = yaml.safe_load(text), yaml.compose(text)  # the node keeps a name given twice (the dict, the last)
    except yaml.YAMLError as err:
        raise ConfigError(f"--generators: {path} is not YAML ({str(err).splitlines()[0]})") from None
    names = [key.value for key, _ in node.value] if isinstance(node, yaml.MappingNode) else []
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise ConfigError(f"{path}: generator name(s) {twice} given more than once")
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{path}: expected a mapping of generator names to generator sections")
    return [_entry(cfg, path, name, section) for name, section in spec.items()]


def _entry(cfg: SweepConfig, path: Path, name: object, section: object) -> GeneratorEntry:
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == "real":
        raise ConfigError(f"{path}: generator name {name!r} must be letters, digits, '_', '.' or '-', not 'real' "
                          "(the real row's)")  # fmt: skip
    where = f"{path}: {name}"
    if not isinstance(section, dict) or "kind" not in section:
        raise ConfigError(f"{where}: expected a generator section with a kind (got {section!r})")
    known = sorted({f.name for f in fields(GeneratorConfig)} | set(ENTRY_FIELDS))
    if unknown := sorted(set(section) - set(known)):
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {known}")
    try:
        generator = with_overrides(GeneratorConfig(), {k: v for k, v in section.items() if k not in ENTRY_FIELDS})
        check_generator(generator)
        if not isinstance(section.get("gan", {}), dict):
            raise ConfigError(f"gan: expected a section of --gan.* fields (got {section['gan']!r})")
        gan = with_overrides(cfg.gan, section.get("gan", {}), "gan.")
        if "gan" in section and not generator.trained_by_the_sweep:
            raise ConfigError("gan: only kind distgan without weights trains a GAN")
        if generator.trained_by_the_sweep:
            check_gan(gan, image_size=cfg.data.image_size)
        knob_values = _knob_values(section.get("knob_values", []))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return GeneratorEntry(name=name, generator=generator, knob_values=knob_values, gan=gan)


def _knob_values(values: object) -> tuple[float, ...]:
    if not isinstance(values, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"knob_values must be a list of numbers (got {values!r})")
    if len(set(values)) != len(values):
        raise ConfigError(f"knob_values must be distinct (got {values})")
    return tuple(float(value) for value in values)


def with_memorisation(cfg: SweepConfig) -> SweepConfig:
    """cfg whose feature spaces also score copy rate, AuthPct and C_T (the compare space's memorisation columns)."""
    missing = tuple(metric for metric in MEMORISATION if metric not in cfg.metrics.metrics)
    return replace(cfg, metrics=replace(cfg.metrics, metrics=cfg.metrics.metrics + missing))


def resolve_generators(cfg: SweepConfig, real_train_dir: Path) -> dict[str, ComparedGenerator]:
    """Every generator of the file opened once on the CPU, its contract probed and its knob values set (the section's,
    else its own); a user's error names the file and the generator."""
    compared = {}
    for entry in read_generators(cfg):
        one = replace(cfg, generator=entry.generator, knob_values=entry.knob_values, gan=entry.gan)
        try:
            one, generator = resolve_generator(one, real_train_dir)
        except DistganError as err:
            raise type(err)(f"{cfg.generators}: {entry.name}: {err}") from None
        knob = "truncation" if generator is None else generator.knob
        compared[entry.name] = ComparedGenerator(entry.name, knob, one.knob_values, generator, entry.gan)
    return compared
