"""The main job: `python tune/sweep.py --space replacement [--quick] [--address ...] [--gan.lr-d ...]`.

With no flags it runs offline on this machine's CPUs on the embedded digits data and ends with a
report. Spaces: replacement, augmentation, gan, gan-test, or a YAML file. Every config field is a
flag (`--help` lists them); `--config FILE.yaml` sets many at once; `--resume` goes on with a sweep
whose driver died.
"""

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `spaces` beside this script

import yaml  # noqa: E402
from spaces import resolve_space  # noqa: E402

from distgan.config import SweepConfig, add_flags, apply_flags, with_overrides  # noqa: E402
from distgan.errors import DistganError  # noqa: E402
from distgan.experiments.sweep import SweepSpace, run_sweep  # noqa: E402
from distgan.recipes import digits_default, digits_quick  # noqa: E402


def parse_config(argv: list[str] | None) -> tuple[SweepConfig, SweepSpace, bool]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the digits_quick recipe: a smoke sweep (< 3 min)")
    parser.add_argument("--config", type=Path, help="YAML file of config fields (nested sections)")
    parser.add_argument("--resume", action="store_true", help="go on with this sweep after its driver died")
    # --space's choices come from the registry, checked after the YAML file (which may set it too).
    add_flags(parser, SweepConfig)
    args = parser.parse_args(argv)
    cfg = digits_quick() if args.quick else digits_default()
    from_file = {}
    if args.config is not None:
        if not args.config.is_file():
            raise DistganError(f"--config: {args.config} not found")
        from_file = yaml.safe_load(args.config.read_text()) or {}
        cfg = with_overrides(cfg, from_file)
    cfg, space = resolve_space(apply_flags(cfg, args))
    if args.name is None and "name" not in from_file:  # the recipe's name says the space: say this one
        cfg = replace(cfg, name=cfg.name.replace("replacement", Path(cfg.space).stem, 1))
    return cfg, space, args.resume


def first_table(markdown: str) -> str:
    """The report's first Markdown table (Table 1, the augmentation or the GAN table)."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg, space, resume = parse_config(argv)
        outcome = run_sweep(cfg, space, resume=resume)
    except DistganError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\nReport: {outcome.report_path}\n")
    print(first_table(outcome.report_path.read_text()))
    print(f"\nSweep wall time: {outcome.wall_time_sec:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
