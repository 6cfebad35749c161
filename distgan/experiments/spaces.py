"""Sweep spaces: one readable declaration each, registered by name (the choices of `--space`), and
custom spaces from a YAML file (`--space my_space.yaml`, format in docs/sweeps.md)."""

from collections.abc import Callable
from pathlib import Path

import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from distgan.config import SCHEDULER_METRICS, GanConfig, SweepConfig
from distgan.errors import ConfigError
from distgan.experiments.gan_search import rung_ends
from distgan.experiments.sweep import SweepSpace
from distgan.flags import with_overrides
from distgan.models.gan import GAN_ARCHS, image_size_rule, makes_image_size
from distgan.models.gans.losses import GAN_LOSSES
from distgan.runtime.registry import Registry
from distgan.schema import EXPERIMENTS, QUALITY_SCORES, labelled

SpaceFn = Callable[[SweepConfig], SweepSpace]
SPACES: Registry[SpaceFn] = Registry("space", "--space")
register_space = SPACES.register


REAL_ROW = {"real": True, "knob_value": None}


def generated(knob_value: float | None) -> dict:
    """A point whose training set is generated at `knob_value` (None: a generator without knob)."""
    return {"real": False, "knob_value": knob_value}


@register_space("replacement")
def replacement(cfg: SweepConfig) -> SweepSpace:
    """Ravuri & Vinyals Table 1: a classifier per knob value (τ, guidance) trained on generated data, plus the real
    row."""
    points = [REAL_ROW] * cfg.include_real + [generated(value) for value in cfg.knob_values]
    return SweepSpace(experiment="replacement", param_space={"point": tune.grid_search(points)})


@register_space("augmentation")
def augmentation(cfg: SweepConfig) -> SweepSpace:
    """Ravuri & Vinyals Table 2 / Figure 2: real data plus a fraction of generated data, per knob value × fraction."""
    points = [REAL_ROW | {"fraction": 0.0}] * cfg.include_real + [
        generated(value) | {"fraction": fraction} for value in cfg.knob_values for fraction in cfg.fractions
    ]
    return SweepSpace(experiment="augmentation", param_space={"point": tune.grid_search(points)})


def archs_for(image_size: int) -> list[str]:
    """The registered GAN architectures that make `image_size`-pixel images (all of them at the usual sizes)."""
    return [arch for arch in sorted(GAN_ARCHS) if makes_image_size(arch, image_size)]


@register_space("gan")
def gan_hyperparameters(cfg: SweepConfig) -> SweepSpace:
    """The GAN's architecture, loss and hyperparameters, each draw a GAN trained and scored (IS, FID, GAN-test,
    GAN-train) at cfg.sample.truncation; ASHA stops the worse half at each rung of cfg.metric. The drawn D:G
    schedule applies whatever the loss (wgan-gp's own default, 5, is among the choices); Adam's betas are the loss's."""
    iterations = cfg.gan.iterations
    half, quarter = iterations // 2, iterations // 4
    schedules = ["1", "3", "5", f"5,2@{half}", f"5,4@{quarter},3@{half},2@{half + quarter}"]  # constant; 5→2; 5→4→3→2
    gan = {
        "arch": tune.choice(archs_for(cfg.data.image_size)),
        "loss": tune.choice(sorted(GAN_LOSSES)),
        "lr_d": tune.loguniform(5e-5, 1e-3),
        "lr_g": tune.loguniform(5e-5, 1e-3),
        "batch_size": tune.choice([32, 64, 128]),
        "iterations": tune.choice([half, iterations]),
        "d_steps_schedule": tune.choice(schedules),
    }
    return SweepSpace(
        experiment="gan",
        param_space={"point": generated(cfg.sample.truncation), "gan": gan},
        num_samples=cfg.num_samples,
        scheduler=gan_asha(cfg, max_iterations=iterations, min_iterations=half),
        search_seed=cfg.gan.seed,
    )


@register_space("gan-test")
def gan_test(cfg: SweepConfig) -> SweepSpace:
    """Shmelkov et al.: GAN-test and GAN-train of a generator per GAN seed, at cfg.sample.truncation."""
    seeds = tune.grid_search(list(cfg.generator_seeds))
    return SweepSpace(
        experiment="gan-test", param_space={"point": generated(cfg.sample.truncation), "gan": {"seed": seeds}}
    )


def gan_asha(cfg: SweepConfig, *, max_iterations: int, min_iterations: int) -> ASHAScheduler:
    """ASHA over G iterations: rungs at the first evaluation of the shortest trials, then ×2. A sample metric is
    read in the leading feature space (the first of --metrics.extractors)."""
    metric = cfg.scheduler_metric
    if metric in QUALITY_SCORES:
        metric = labelled(metric, cfg.metrics.extractors[0])
    return ASHAScheduler(
        time_attr="gan_iterations",
        metric=metric,
        mode=SCHEDULER_METRICS[cfg.scheduler_metric],
        max_t=max_iterations,
        grace_period=rung_ends(min_iterations, cfg.rungs)[0],
        reduction_factor=2,
    )


DISTRIBUTIONS = {
    "choice": tune.choice,
    "grid": tune.grid_search,
    "loguniform": lambda bounds: tune.loguniform(*bounds),
    "uniform": lambda bounds: tune.uniform(*bounds),
}


def _gan_parameter(name: str, value: object, path: Path, cfg: SweepConfig) -> object:
    """A YAML GAN entry: a constant, a list (grid), or {choice|grid|loguniform|uniform: [...]}. Every value a
    constant, list, choice or grid can take is checked here, before any trial (e.g. an unknown arch or loss)."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
            raise ConfigError(f"{path}: gan.{name} must be a value, a list or one of {sorted(DISTRIBUTIONS)}")
        kind, arguments = next(iter(value.items()))
        if kind in ("choice", "grid"):
            _check_gan_values(name, arguments, path, cfg)
        return DISTRIBUTIONS[kind](arguments)
    _check_gan_values(name, value if isinstance(value, list) else [value], path, cfg)
    return tune.grid_search(value) if isinstance(value, list) else value


def _check_gan_values(name: str, values: object, path: Path, cfg: SweepConfig) -> None:
    """Each value as the trial will set it (`--gan.<name>`), and an arch that cannot make the data's image size."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{path}: gan.{name} must list at least one value (got {values!r})")
    for value in values:
        try:
            gan = with_overrides(cfg.gan, {name: value})
        except ConfigError as error:
            raise ConfigError(f"{path}: gan.{name}: {error}") from None
        if name == "arch" and not makes_image_size(gan.arch, cfg.data.image_size):
            size, rule = cfg.data.image_size, image_size_rule(gan.arch)
            raise ConfigError(f"{path}: gan.arch: --data.image-size must be {rule} (got {size})")


def load_space_file(path: Path, cfg: SweepConfig) -> tuple[SweepConfig, SweepSpace]:
    """A custom space from YAML: experiment, and any of knob_values, fractions, include_real, num_samples
    (which set those config fields) and gan (values, lists for grids, or distributions)."""
    if not path.is_file():
        raise ConfigError(f"--space: {path} not found")
    spec = yaml.safe_load(path.read_text()) or {}
    known = {"experiment", "knob_values", "fractions", "include_real", "gan", "num_samples"}
    if unknown := sorted(set(spec) - known):
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    experiment = spec.get("experiment")
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"{path}: experiment must be one of {list(EXPERIMENTS)} (got {experiment!r})")
    overrides = {key: spec[key] for key in ("knob_values", "fractions", "include_real", "num_samples") if key in spec}
    cfg = with_overrides(cfg, overrides)
    gan = spec.get("gan") or {}
    unknown_gan = sorted(set(gan) - set(GanConfig.__dataclass_fields__))
    if unknown_gan:
        raise ConfigError(f"{path}: unknown gan field(s) {unknown_gan}")
    builtin = SPACES[experiment](cfg)
    param_space = dict(builtin.param_space)
    scheduler = builtin.scheduler
    if gan:
        param_space["gan"] = {name: _gan_parameter(name, value, path, cfg) for name, value in gan.items()}
        if experiment == "gan":  # ASHA's rungs follow this space's iterations
            iterations = _iteration_values(param_space["gan"].get("iterations", cfg.gan.iterations))
            scheduler = gan_asha(cfg, max_iterations=max(iterations), min_iterations=min(iterations))
    return cfg, SweepSpace(
        experiment=experiment,
        param_space=param_space,
        num_samples=builtin.num_samples,
        scheduler=scheduler,
        search_seed=builtin.search_seed,
    )


def _iteration_values(parameter: object) -> list[int]:
    """The G iteration counts a space's `iterations` entry can take (a value, a grid or a choice)."""
    if isinstance(parameter, dict) and "grid_search" in parameter:
        return list(parameter["grid_search"])
    if hasattr(parameter, "categories"):
        return list(parameter.categories)
    if isinstance(parameter, int):
        return [parameter]
    raise ConfigError(f"gan.iterations must be a value, a list or a choice (got {parameter!r})")


def resolve_space(cfg: SweepConfig) -> tuple[SweepConfig, SweepSpace]:
    """cfg.space: a registered name, or a YAML file of a custom space (which may set config fields)."""
    if cfg.space in SPACES:
        return cfg, SPACES[cfg.space](cfg)
    if cfg.space.endswith((".yaml", ".yml")):
        return load_space_file(Path(cfg.space), cfg)
    raise ConfigError(f"--space: unknown space {cfg.space!r}; choose from {sorted(SPACES)} or give a YAML file")
