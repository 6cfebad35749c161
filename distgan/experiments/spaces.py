"""Sweep spaces: one readable declaration each, registered by name (the choices of `--space`), the compare space
over the generators of a file (`--space compare --generators FILE.yaml`, docs/compare.md), and custom spaces from a
YAML file (`--space my_space.yaml`, format in docs/sweeps.md)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from distgan.config import GanConfig, SweepConfig
from distgan.errors import ConfigError
from distgan.experiments.compared import COMPARE, ComparedGenerator, check_compare, with_memorisation
from distgan.flags import with_overrides
from distgan.models.checks import check_gan
from distgan.models.gan import GAN_ARCHS, makes_image_size
from distgan.models.gans.losses import GAN_LOSSES
from distgan.runtime.registry import Registry
from distgan.schema import EXPERIMENTS, QUALITY_SCORES, SCHEDULER_METRICS, labelled


@dataclass(frozen=True)
class SweepSpace:
    """A space of trials: the experiment, its Tune param space, and how to search it."""

    experiment: str  # one of schema.EXPERIMENTS
    param_space: dict  # {"point": ..., "gan": ...}, with tune.grid_search / distributions inside
    num_samples: int = 1  # draws of the space's distributions (grids are crossed with each)
    scheduler: TrialScheduler | None = None  # e.g. ASHA for the gan space
    search_seed: int | None = None  # makes the random draws reproducible

    def __post_init__(self) -> None:
        if self.experiment not in EXPERIMENTS:
            raise ConfigError(f"space experiment {self.experiment!r} is not one of {EXPERIMENTS}")


SpaceFn = Callable[[SweepConfig], SweepSpace]
SPACES: Registry[SpaceFn] = Registry("space", "--space")
register_space = SPACES.register


REAL_ROW = {"real": True, "knob_value": None}


def synthetic_point(knob_value: float | None) -> dict:
    """A point whose training set is generated at `knob_value` (None: a generator without knob)."""
    return {"real": False, "knob_value": knob_value}


@register_space("replacement")
def replacement(cfg: SweepConfig) -> SweepSpace:
    """Ravuri & Vinyals Table 1: a classifier per knob value (τ, guidance) trained on generated data, plus the real
    row."""
    points = [REAL_ROW] * cfg.include_real + [synthetic_point(value) for value in cfg.knob_values]
    return SweepSpace(experiment="replacement", param_space={"point": tune.grid_search(points)})


def compare_space(cfg: SweepConfig, compared: dict[str, ComparedGenerator]) -> SweepSpace:
    """Every (generator, knob value) of the file a replacement trial on the same real data, classifier and schedule,
    plus the real row; each trained --seeds times, the classifier's seed a grid axis (seeds run concurrently)."""
    points = [REAL_ROW] * cfg.include_real + [
        synthetic_point(value) | {"generator": name, "knob": named.knob}
        for name, named in compared.items()
        for value in named.knob_values
    ]
    seeds = tune.grid_search(list(range(cfg.seeds)))
    return SweepSpace(experiment=COMPARE, param_space={"point": tune.grid_search(points), "seed": seeds})


@register_space("augmentation")
def augmentation(cfg: SweepConfig) -> SweepSpace:
    """Ravuri & Vinyals Table 2 / Figure 2: real data plus a fraction of generated data, per knob value × fraction."""
    points = [REAL_ROW | {"fraction": 0.0}] * cfg.include_real + [
        synthetic_point(value) | {"fraction": fraction} for value in cfg.knob_values for fraction in cfg.fractions
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
        param_space={"point": synthetic_point(cfg.sample.truncation), "gan": gan},
        num_samples=cfg.num_samples,
        scheduler=gan_asha(cfg, max_iterations=iterations, min_iterations=half),
        search_seed=cfg.gan.seed,
    )


@register_space("gan-test")
def gan_test(cfg: SweepConfig) -> SweepSpace:
    """Shmelkov et al.: GAN-test and GAN-train of a generator per GAN seed, at cfg.sample.truncation."""
    seeds = tune.grid_search(list(cfg.generator_seeds))
    return SweepSpace(
        experiment="gan-test", param_space={"point": synthetic_point(cfg.sample.truncation), "gan": {"seed": seeds}}
    )


def rung_ends(iterations: int, rungs: int) -> list[int]:
    """The G iterations after which a gan trial is evaluated (ASHA's rungs): multiples of iterations // rungs, then the
    end."""
    step = iterations // rungs
    return sorted({step * k for k in range(1, rungs)} | {iterations})


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
    """Each value as the trial will set it (`--gan.<name>`), checked by the models layer (an arch that cannot make
    the data's image size too)."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{path}: gan.{name} must list at least one value (got {values!r})")
    for value in values:
        try:
            check_gan(with_overrides(cfg.gan, {name: value}), image_size=cfg.data.image_size)
        except ConfigError as error:
            raise ConfigError(f"{path}: gan.{name}: {error}") from None


YAML_FIELDS = ("knob_values", "fractions", "include_real", "num_samples")  # config fields a YAML space may set
YAML_EXPERIMENTS = tuple(experiment for experiment in EXPERIMENTS if experiment != COMPARE)


def _space_file(path: Path) -> dict:
    """A custom space's YAML: experiment, any of YAML_FIELDS, and gan (values, lists for grids, or distributions)."""
    if not path.is_file():
        raise ConfigError(f"--space: {path} not found")
    spec = yaml.safe_load(path.read_text()) or {}
    known = {"experiment", "gan", *YAML_FIELDS}
    if unknown := sorted(set(spec) - known):
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    if spec.get("experiment") not in YAML_EXPERIMENTS:
        raise ConfigError(f"{path}: experiment must be one of {list(YAML_EXPERIMENTS)} (got {spec.get('experiment')!r}"
                          "; a comparison of generators: --space compare --generators FILE)")  # fmt: skip
    unknown_gan = sorted(set(spec.get("gan") or {}) - set(GanConfig.__dataclass_fields__))
    if unknown_gan:
        raise ConfigError(f"{path}: unknown gan field(s) {unknown_gan}")
    return spec


def _is_file(space: str) -> bool:
    return space.endswith((".yaml", ".yml"))


def experiment_of(cfg: SweepConfig) -> str:
    """The experiment cfg.space runs (replacement, augmentation, gan, gan-test, compare)."""
    if cfg.space == COMPARE:
        return COMPARE
    if _is_file(cfg.space):
        return _space_file(Path(cfg.space))["experiment"]
    return SPACES.get_or_raise(cfg.space)(cfg).experiment


def with_space_fields(cfg: SweepConfig) -> SweepConfig:
    """cfg with the fields a YAML space sets (YAML_FIELDS), its GAN entries checked; the compare space's memorisation
    metrics; a registered space sets none."""
    if cfg.space == COMPARE:
        return with_memorisation(cfg)
    if not _is_file(cfg.space):
        return cfg
    path = Path(cfg.space)
    spec = _space_file(path)
    cfg = with_overrides(cfg, {key: spec[key] for key in YAML_FIELDS if key in spec})
    for name, value in (spec.get("gan") or {}).items():
        _gan_parameter(name, value, path, cfg)
    return cfg


def build_space(cfg: SweepConfig) -> SweepSpace:
    """The space of trials cfg.space declares, over cfg's fields (its knob values set by
    `synthetic.resolve_generator`)."""
    if not _is_file(cfg.space):
        return SPACES.get_or_raise(cfg.space)(cfg)
    path = Path(cfg.space)
    spec = _space_file(path)
    builtin = SPACES[spec["experiment"]](cfg)
    gan = spec.get("gan") or {}
    if not gan:
        return builtin
    param_space = dict(builtin.param_space)
    param_space["gan"] = {name: _gan_parameter(name, value, path, cfg) for name, value in gan.items()}
    scheduler = builtin.scheduler
    if spec["experiment"] == "gan":  # ASHA's rungs follow this space's iterations
        iterations = _iteration_values(param_space["gan"].get("iterations", cfg.gan.iterations))
        scheduler = gan_asha(cfg, max_iterations=max(iterations), min_iterations=min(iterations))
    return SweepSpace(
        experiment=spec["experiment"],
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


def check_space(cfg: SweepConfig) -> None:
    """ConfigError naming --space unless it is registered, compare with a readable --generators file, or a readable
    YAML space (its keys and GAN entries); --seeds above 1 only with compare."""
    if cfg.space == COMPARE or cfg.generators is not None:
        check_compare(cfg)
    elif cfg.seeds != 1:
        raise ConfigError(f"--seeds: several classifiers per set in --space compare only (got {cfg.seeds})")
    elif _is_file(cfg.space):
        with_space_fields(cfg)
    elif cfg.space not in SPACES:
        raise ConfigError(f"--space: unknown space {cfg.space!r}; choose from {sorted(SPACES)}, {COMPARE} (with "
                          "--generators) or give a YAML file")  # fmt: skip
