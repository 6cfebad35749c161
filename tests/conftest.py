"""Shared fixtures: the repository root, digits shards, and reference implementations of metrics from their packages."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a user's shell has after `. .venv/bin/activate`: this interpreter's `python` and `distgan` first on PATH.
USER_ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "RAY_AUTH_MODE": "disabled",
    "PYTHONUNBUFFERED": "1",
}


@pytest.fixture(scope="session")
def checkout(tmp_path_factory) -> Path:
    """A copy of this checkout as a fresh clone has it (tracked and not-ignored files; no results/, no .venv), where
    the README's commands run as typed, relative paths and all. The tests share it: the main job's caches serve
    the sweeps that follow it, as they would a user's."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    root = tmp_path_factory.mktemp("clone") / "distgan"
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


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


@pytest.fixture(scope="session")
def digits_shards(tmp_path_factory):
    """Real digits shards (16×16 PNG, 1,437 train / 360 test), made once by the CLI as a user would: DIR/train
    and DIR/test. Tests read them and never write there."""
    out = tmp_path_factory.mktemp("digits")
    command = [sys.executable, "-m", "distgan.cli", "prepare", "digits", "--out", str(out), "--image-size", "16"]
    prepared = subprocess.run(command, capture_output=True, text=True)
    assert prepared.returncode == 0, prepared.stderr
    return out
