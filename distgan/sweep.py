"""The front door of sweeps: `distgan.sweep.run(cfg)` from Python; `main(argv)` is `python tune/sweep.py`.

    from distgan.recipes import digits_quick
    from distgan.sweep import run
    outcome = run(digits_quick())          # SweepOutcome(report_path=..., wall_time_sec=...)

With no flag the main job runs offline on this machine's CPUs on the embedded digits and ends with a report.
Spaces: replacement, augmentation, gan, gan-test, compare (`--generators FILE.yaml`: several generators ranked), or a
YAML file. Every config field is a flag (`--help`
lists them); `--config FILE.yaml` sets many at once; `--resume` goes on with a sweep whose driver died.
"""

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from distgan.config import SweepConfig
from distgan.errors import ConfigError, DistganError
from distgan.experiments.artifacts import prepare_real_shards
from distgan.experiments.compared import COMPARE, resolve_generators
from distgan.experiments.spaces import build_space, compare_space, experiment_of, with_space_fields
from distgan.experiments.sweep import SweepOutcome, require_resumable, run_sweep
from distgan.experiments.synthetic import resolve_generator
from distgan.flags import add_flags, apply_flags, with_overrides
from distgan.recipes import RECIPES
from distgan.validate import validate


def run(cfg: SweepConfig, *, resume: bool = False) -> SweepOutcome:
    """Run the sweep that cfg describes (its space by name or YAML file, its generator) and write its report.

    Pre-flight, once and in this order, before Ray starts: the config and every name in it, resumability, the space,
    the generator kind's constraints, the real shards (read and checked), the generator (opened once, its contract
    probed on two images, its knob values set; in the compare space, each generator of --generators so)."""
    validate(cfg)
    if resume:
        require_resumable(cfg)
    cfg = with_space_fields(cfg)  # a YAML space may set knob_values, fractions, ...
    if experiment_of(cfg) in ("gan", "gan-test") and not cfg.generator.trained_by_the_sweep:
        raise ConfigError(f"--space {cfg.space} trains its own GANs: it takes no --generator.kind/--generator.weights")
    real = prepare_real_shards(cfg)
    if experiment_of(cfg) == COMPARE:
        compared = resolve_generators(cfg, real.train_dir)
        return run_sweep(cfg, compare_space(cfg, compared), real, generator=None, compared=compared, resume=resume)
    cfg, generator = resolve_generator(cfg, real.train_dir)
    return run_sweep(cfg, build_space(cfg), real, generator=generator, resume=resume)


def parse_config(argv: list[str] | None) -> tuple[SweepConfig, bool]:
    """(the config of the command line: recipe < --config file < flags, its space checked; --resume)."""
    parser = argparse.ArgumentParser(
        prog="tune/sweep.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="digits_default", help="the named base config")
    parser.add_argument("--quick", action="store_true", help="--recipe digits_quick: a smoke sweep")
    parser.add_argument("--config", type=Path, help="YAML file of config fields (nested sections)")
    parser.add_argument("--resume", action="store_true", help="go on with this sweep after its driver died")
    add_flags(parser, SweepConfig)  # --space's choices come from the registry, checked after the YAML file
    args = parser.parse_args(argv)
    cfg = RECIPES["digits_quick" if args.quick else args.recipe]()
    from_file = {}
    if args.config is not None:
        if not args.config.is_file():
            raise DistganError(f"--config: {args.config} not found")
        from_file = yaml.safe_load(args.config.read_text()) or {}
        cfg = with_overrides(cfg, from_file)
    recipe_generator, recipe_space = cfg.generator, cfg.space
    cfg = apply_flags(cfg, args)
    if cfg.generator != recipe_generator and vars(args)["knob-values"] is None and "knob_values" not in from_file:
        cfg = replace(cfg, knob_values=())  # a recipe's knob values are its generator's: another takes its own
    validate(cfg)  # an unknown name, space or a bad YAML space fails here, before any work
    if args.name is None and "name" not in from_file:  # the recipe's name says the space: say this one
        cfg = replace(cfg, name=cfg.name.replace(recipe_space, Path(cfg.space).stem, 1))
    return cfg, args.resume


def first_table(markdown: str) -> str:
    """The report's first Markdown table (Table 1, the augmentation or the GAN table)."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def main(argv: list[str] | None = None) -> int:
    """The sweep command: exit 0 with the report's path, first table and wall time printed; 2 on a user error."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg, resume = parse_config(argv)
        outcome = run(cfg, resume=resume)
    except DistganError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\nReport: {outcome.report_path}\n")
    print(first_table(outcome.report_path.read_text()))
    print(f"\nSweep wall time: {outcome.wall_time_sec:.0f} s")
    return 0
