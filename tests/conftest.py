"""Shared fixtures: a fresh-clone copy of the checkout, digits shards, and the one Ray instance the in-process
sweeps of the session share. What tests repeat that is not a fixture lives in helpers.py."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import MAIN_JOB, REPO, USER_ENV, copy_checkout, readme_commands

__all__ = ["REPO", "USER_ENV", "readme_commands"]  # test modules import these from here too


@pytest.fixture(scope="session")
def checkout(tmp_path_factory):
    """A copy of this checkout as a fresh clone has it (tracked and not-ignored files; no results/, no .venv), where
    the README's commands run as typed, relative paths and all. The tests share it: the main job's caches serve
    the sweeps that follow it, as they would a user's."""
    return copy_checkout(tmp_path_factory.mktemp("clone") / "distgan")


@pytest.fixture(scope="session")
def quick_sweep(checkout):
    """The README's main job with `--quick`, typed in the checkout: (the sweep directory the command printed, its
    stdout). Its results directory's caches (real shards, GAN, domain extractor, real sides, synthetic sets) serve
    every later sweep of the session that asks for the same artifacts, as they would a user's next sweep."""
    assert MAIN_JOB == ["python", "tune/sweep.py", "--space", "replacement"]
    done = subprocess.run(
        [sys.executable, *MAIN_JOB[1:], "--quick"], capture_output=True, text=True, timeout=420, env=USER_ENV,
        cwd=checkout,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    printed = re.search(r"^Report: (.+)$", done.stdout, re.MULTILINE)
    assert printed, done.stdout[-3000:]
    report = Path(printed.group(1))
    assert report == checkout / "results" / "replacement-digits-quick" / "report.md"  # where the user typed it
    assert report.is_file()
    return report.parent, done.stdout


@pytest.fixture(scope="session")
def ray_session():
    """One Ray instance for the session's in-process sweeps (`run_sweep` starts Ray only where none is running):
    the 2 CPUs of this machine, no dashboard; shut down at the session's end. A new local instance ("local"), never
    one a multi-node test started with `ray start` (which address=None would join)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def digits_shards(tmp_path_factory):
    """Real digits shards (16×16 PNG, 1,437 train / 360 test), made once by the CLI as a user would: DIR/train
    and DIR/test. Tests read them and never write there."""
    out = tmp_path_factory.mktemp("digits")
    command = [sys.executable, "-m", "distgan.cli", "prepare", "digits", "--out", str(out), "--image-size", "16"]
    prepared = subprocess.run(command, capture_output=True, text=True)
    assert prepared.returncode == 0, prepared.stderr
    return out
