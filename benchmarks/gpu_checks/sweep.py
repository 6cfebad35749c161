"""Part 7 of benchmarks/gpu_check.py: `tune/sweep.py --space replacement --quick` with one worker of one GPU a trial:
the placement that deadlocked (issue 23: the trial held its GPU and its sampling job asked Ray for another). Each
trial's jobs must run in the trial's own process (jobs/placement.py): every stage of its result.json a world of
size 1 whose rank is the driver's pid, on the GPU."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

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

    results = setup.work_dir / "sweep"
    command = [sys.executable, "tune/sweep.py", "--space", "replacement", "--quick", "--gpus-per-worker", "1",
               "--workers-per-trial", "1", "--results-dir", str(results)]  # fmt: skip
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
    row.figure(check_in_trial_process(results))
    row.note("--workers-per-trial 1 --gpus-per-worker 1")


def check_in_trial_process(results: Path) -> str:
    """Every trial's stages ran in its own process (world size 1, the driver's pid) on the GPU; says how many."""
    trials = [json.loads(path.read_text()) for path in sorted(results.glob("*/trials/*/result.json"))]
    check(bool(trials), f"no result.json under {results}")
    for result in trials:
        for stage, record in result["stages"].items():
            ranks = record["ranks"]
            check(record["world_size"] == 1 and [r["pid"] for r in ranks] == [result["driver"]["pid"]],
                  f"stage {stage} ran on {ranks}, not in the trial's process {result['driver']}")  # fmt: skip
            check(ranks[0]["device"].startswith("cuda"), f"stage {stage} ran on {ranks[0]['device']}")
    stages = sorted({stage for result in trials for stage in result["stages"]})
    return f"{len(trials)} trials: {', '.join(stages)} each in the trial's own process (world 1) on the GPU"
