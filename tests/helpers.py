"""What the tests repeat: the user's shell environment, the README's commands, a fresh-clone copy of the checkout,
a sweep run in this process through the library's front door, and the files a sweep writes."""

import contextlib
import csv
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What a user's shell has after `. .venv/bin/activate`: this interpreter's `python` and `distgan` first on PATH.
# Taken before this process starts Ray, and without RAY_ADDRESS: a command a test types starts its own Ray.
USER_ENV = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "RAY_AUTH_MODE": "disabled",
    "PYTHONUNBUFFERED": "1",
}


def readme_commands(heading: str) -> list[list[str]]:
    """The commands of the first ```bash block under README.md's `heading`, as argv lists: continuation lines
    joined, comments dropped."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index(heading)
    begin = next(i for i in range(start, len(lines)) if lines[i].startswith("```bash")) + 1
    end = next(i for i in range(begin, len(lines)) if lines[i].startswith("```"))
    commands, pending = [], ""
    for line in lines[begin:end]:
        pending += line
        if pending.rstrip().endswith("\\"):
            pending = pending.rstrip()[:-1] + " "
            continue
        if argv := shlex.split(pending, comments=True):
            commands.append(argv)
        pending = ""
    return commands


# The README's main job, exactly as written there (its `python` is the venv's, as after activating it).
(MAIN_JOB,) = [argv for argv in readme_commands("By hand, the same steps:") if "tune/sweep.py" in argv]


def copy_checkout(root: Path) -> Path:
    """Copy this checkout's tracked and not-ignored files to root, as a fresh clone has them (no results/, no
    .venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


@contextlib.contextmanager
def working_directory(path: Path):
    """Run a block from path, as a user who typed the command there (relative flags resolve against it)."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass(frozen=True)
class SweepRun:
    """A sweep run in this process: its directory, report, the report's first table (what the command prints)
    and the driver's log lines."""

    out_dir: Path
    report_path: Path
    table: str
    log: str


def run_sweep_in_process(cwd: Path, *flags: str) -> SweepRun:
    """The sweep of `python tune/sweep.py FLAGS` typed in cwd, run in this process through `distgan.sweep`'s
    `parse_config` and `run` (the config the CLI builds, on this process's Ray instance when one is running)."""
    from distgan.sweep import first_table, parse_config, run

    lines, logger = _Lines(), logging.getLogger("distgan")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        with working_directory(cwd):
            cfg, resume = parse_config(list(flags))
            outcome = run(cfg, resume=resume)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    table = first_table(outcome.report_path.read_text())
    return SweepRun(cfg.out_dir, outcome.report_path, table, "\n".join(lines.lines))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def trial_results(sweep_dir: Path) -> list[dict]:
    """Every trials/*/result.json of a sweep, in trial-name order."""
    return [read_json(path) for path in sorted(Path(sweep_dir).glob("trials/*/result.json"))]


def read_report_csv(sweep_dir: Path) -> list[dict]:
    """The rows of a sweep's report.csv."""
    with open(Path(sweep_dir) / "report.csv") as f:
        return list(csv.DictReader(f))


def main_job_sets(sweep_dir: Path, name: str) -> list[Path]:
    """The cached synthetic sets `name` (e.g. tau0.5) sampled from the main job's GAN: other sweeps sharing the
    cache sample sets of the same name from other generators."""
    made_by = read_json(sweep_dir / "trials" / "tau0.5" / "result.json")["digests"]["generator_sha256"]
    return [path.parent for path in sorted(sweep_dir.parent.glob(f"cache/synthetic-{name}-*/manifest.json"))
            if read_json(path)["provenance"]["sampling"]["generator"]["sha256"] == made_by]  # fmt: skip
