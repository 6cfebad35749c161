"""Part 7 of benchmarks/gpu_check.py: `tune/sweep.py --space replacement --quick` with one GPU per worker."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from .common import CheckFailed, NotHere, Row, Setup, check, require

REPO = Path(__file__).resolve().parents[2]


def run_command(command: list[str], timeout_s: float, env: dict) -> tuple[int, str, float]:
    """(exit code, stdout + stderr, seconds) of a command in a session of its own. Past its timeout (or the part's)
    it is stopped with its process group, SIGTERM then SIGKILL; its own timeout fails the part."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except BaseException as err:
        output = ""
        for stop, grace_s in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, stop)
            try:
                output, _ = process.communicate(timeout=grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
        if isinstance(err, subprocess.TimeoutExpired):
            raise CheckFailed(f"still running after {timeout_s:.0f} s: {output[-300:]}") from None
        raise
    return process.returncode, output, time.perf_counter() - start


def part_sweep(setup: Setup, row: Row) -> None:
    require("ray")
    from distgan.profiling import UtilisationSampler, summarise

    # A trial's workers each need a whole GPU (launch.check_gpus_per_worker): on one GPU, one worker per trial.
    workers = 1 if setup.rehearse else max(1, min(2, torch.cuda.device_count()))
    command = [sys.executable, "tune/sweep.py", "--space", "replacement", "--quick", "--gpus-per-worker", "1",
               "--workers-per-trial", str(workers), "--results-dir", str(setup.work_dir / "sweep")]  # fmt: skip
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = os.environ | {"PYTHONPATH": path, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    if setup.rehearse:
        code, output, seconds = run_command([*command, "--help"], 120, env)
        check(code == 0, f"tune/sweep.py --help: exit {code}: {output[-300:]}")
        raise NotHere(f"rehearsal: the sweep needs a GPU; its command line parsed (--help, {seconds:.0f} s)")
    with UtilisationSampler(interval_s=1.0) as sampler:
        code, output, seconds = run_command(command, setup.sweep_timeout_s, env)
    check(code == 0, f"exit {code}: {output[-300:]}")
    summary = summarise(sampler.samples())
    own = re.search(r"Sweep wall time: (\d+) s", output)
    check(summary.get("gpu_util_mean", 0) > 0, "the GPU stayed idle during a --gpus-per-worker 1 sweep")
    row.figure(f"{seconds:.0f} s (the sweep's own count: {own.group(1) if own else '?'} s); GPU util mean "
               f"{summary['gpu_util_mean']:.0f} %, p95 {summary['gpu_util_p95']:.0f} %, idle "
               f"{summary['gpu_idle_frac']:.0%}; memory peak {summary['gpu_mem_peak_mib']:,.0f} MiB")  # fmt: skip
    row.note(f"--workers-per-trial {workers}")
