"""The main job: `python tune/sweep.py --space replacement [--quick] [--address ...] [--gan.lr-d ...]`.

With no flags it runs offline on this machine's CPUs on the embedded digits data and ends with a
report. Every config field is a flag (`--help` lists them); `--config FILE.yaml` sets many at once.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `spaces` beside this script

import yaml  # noqa: E402
from spaces import SPACES  # noqa: E402

from distgan.config import SweepConfig, add_flags, apply_flags, with_overrides  # noqa: E402
from distgan.errors import DistganError  # noqa: E402
from distgan.experiments.sweep import run_sweep  # noqa: E402
from distgan.recipes import digits_default, digits_quick  # noqa: E402


def parse_config(argv: list[str] | None) -> SweepConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the digits_quick recipe: a smoke sweep (< 3 min)")
    parser.add_argument("--config", type=Path, help="YAML file of config fields (nested sections)")
    # --space's choices come from the registry, checked after the YAML file (which may set it too).
    add_flags(parser, SweepConfig)
    args = parser.parse_args(argv)
    cfg = digits_quick() if args.quick else digits_default()
    if args.config is not None:
        if not args.config.is_file():
            raise DistganError(f"--config: {args.config} not found")
        cfg = with_overrides(cfg, yaml.safe_load(args.config.read_text()) or {})
    cfg = apply_flags(cfg, args)
    if cfg.space not in SPACES:
        raise DistganError(f"--space: unknown space {cfg.space!r}; choose from {sorted(SPACES)}")
    return cfg


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = parse_config(argv)
        outcome = run_sweep(cfg, SPACES[cfg.space](cfg))
    except DistganError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\nReport: {outcome.report_path}\n")
    print(outcome.report_path.read_text().split("## Table 1: classification on generated data\n\n")[1].split("\n\n")[0])
    print(f"\nSweep wall time: {outcome.wall_time_sec:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
