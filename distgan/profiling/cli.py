"""`distgan profile [--interval S] [--out profile.csv] -- <command ...>`: run any command under the sampler.

The command runs as a child process; the sampler reads the GPUs through NVML, or without NVML the CPU and RSS of
the child's process tree. On exit: profile.csv and a JSON summary beside it (profile.json), the summary printed,
and the command's exit code returned (128 + N when a signal N killed it, as shells report it).
Also runs alone, without importing torch: `python -m distgan.profiling.cli -- <command ...>`.
"""

import argparse
import logging
import signal
import subprocess
import sys
from pathlib import Path

from distgan.errors import ConfigError, DistganError
from distgan.profiling.sampler import UtilisationSampler
from distgan.profiling.summary import json_text, summarise, write_json
from distgan.runtime.paths import absolute

log = logging.getLogger(__name__)


def profile_command(command: list[str], out: Path, interval_s: float = 1.0) -> tuple[int, dict]:
    """Run `command` under a UtilisationSampler; write `out` (CSV) and its .json summary; (exit code, summary)."""
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ConfigError("distgan profile: no command given (usage: distgan profile [--out profile.csv] -- CMD ...)")
    out = Path(out)
    if out.suffix != ".csv":
        raise ConfigError(f"distgan profile: --out must name a .csv file (got {out})")
    try:
        child = subprocess.Popen(command)
    except OSError as err:
        raise ConfigError(f"distgan profile: cannot start {command[0]!r}: {err}") from err
    # Ctrl-C reaches the child too (same process group): let it decide, and keep sampling until it exits.
    # A scheduler's SIGTERM (scancel, Ray) may reach only us: pass it on.
    previous = {}
    try:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda signum, _: child.send_signal(signum))
    except ValueError:  # not the main thread: no handlers, the default behaviour stays
        pass
    try:
        with UtilisationSampler(interval_s=interval_s, pid=child.pid) as sampler:
            returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    samples = sampler.samples()
    summary = summarise(samples) | {"command": command, "exit_code": returncode}
    sampler.write_csv(out)
    write_json(summary, out.with_suffix(".json"))
    log.info("profile: %d samples → %s, %s", len(samples), out, out.with_suffix(".json"))
    return (128 - returncode if returncode < 0 else returncode), summary


def _profile_stage(args) -> None:
    code, summary = profile_command(args.command, args.out, args.interval)
    print(json_text(summary), end="")
    # The exit code is the profiled command's, not ours: leave through SystemExit with it.
    raise SystemExit(code)


def add_profile_parser(subparsers) -> argparse.ArgumentParser:
    """Register `profile` on an argparse subparsers object (distgan/cli.py's stages); returns its parser."""
    p = subparsers.add_parser(
        "profile",
        help="run a command while sampling GPU (NVML) or CPU/RSS utilisation; writes profile.csv + profile.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--out", type=absolute, default="profile.csv", help="CSV path; the JSON summary goes beside it")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    p.set_defaults(run=_profile_stage)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m distgan.profiling.cli [--interval S] [--out F] -- CMD ...` (no torch import)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(prog="distgan-profile")
    add_profile_parser(parser.add_subparsers(dest="stage", required=True))
    args = parser.parse_args(["profile", *(sys.argv[1:] if argv is None else argv)])
    try:
        args.run(args)
    except DistganError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SystemExit as done:
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
