"""`distgan slurm sweep|train [options] -- ARGS`: fill the #SBATCH header of slurm/<script>.sbatch, print
the script, and with --submit hand it to `sbatch`.

The rendered script is self-contained: the header carries the allocation (partition, nodes, GPUs,
CPUs, time), and the arguments of the sweep or of the training stage are baked in with `set --`,
so what ran can be read back from the job's script (`scontrol write batch_script JOBID`).
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from distgan.errors import ConfigError
from distgan.runtime.atomic import write_text_atomic
from distgan.runtime.paths import absolute

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("sweep", "train")
TRAIN_STAGES = ("train-gan", "train-classifier")
# Slurm's --time forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
_TIME = re.compile(r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$")
_WORD = re.compile(r"^[A-Za-z0-9_.,+%=:@/-]+$")  # one sbatch value: no spaces, quotes or newlines


@dataclass(kw_only=True)
class SlurmJob:
    """One Slurm job: the allocation and what runs on it."""

    script: str  # "sweep" (Ray cluster + tune/sweep.py) or "train" (torchrun of one distgan stage)
    args: tuple[str, ...] = ()  # the sweep's flags, or the stage and its flags (train-gan|train-classifier ...)
    partition: str | None = None  # None: the cluster's default partition
    account: str | None = None  # None: the user's default account
    nodes: int = 1
    gpus_per_node: int = 0  # 0: CPU only (gloo)
    cpus_per_task: int = 2  # one task per node: all the CPUs Ray (or torchrun's workers) get on a node
    nproc_per_node: int | None = None  # train only: workers per node; None: gpus_per_node, or 1 without GPUs
    mem: str | None = None  # memory per node, e.g. 64G; None: the partition's default
    time: str = "04:00:00"  # wall-time limit in one of Slurm's forms
    job_name: str | None = None  # None: distgan-<script>
    output: str | None = None  # stdout+stderr file (%j: job id); None: distgan-<script>-%j.out in chdir
    chdir: Path = field(default_factory=lambda: REPO)  # where the job runs: the checkout (tune/ lives there)
    # The interpreter the job runs, and its directory first on the job's PATH (ray, torchrun): by default the one
    # rendering the script, so a job from a venv that was never activated does not run the system Python.
    python: Path = field(default_factory=lambda: Path(sys.executable))

    def __post_init__(self):
        if self.script not in SCRIPTS:
            raise ConfigError(f"script must be one of {SCRIPTS} (got {self.script!r})")
        for flag, value in (("--nodes", self.nodes), ("--cpus-per-task", self.cpus_per_task)):
            if value < 1:
                raise ConfigError(f"{flag} must be ≥ 1 (got {value})")
        if self.gpus_per_node < 0:
            raise ConfigError(f"--gpus-per-node must be ≥ 0 (got {self.gpus_per_node})")
        if self.nproc_per_node is not None and (self.script != "train" or self.nproc_per_node < 1):
            raise ConfigError(f"--nproc-per-node must be ≥ 1 and only given for train (got {self.nproc_per_node})")
        if not _TIME.match(self.time):
            raise ConfigError(f"--time must be minutes, HH:MM:SS or D-HH:MM:SS (got {self.time!r})")
        for flag, value in (("--partition", self.partition), ("--account", self.account), ("--mem", self.mem),
                            ("--job-name", self.job_name), ("--output", self.output)):  # fmt: skip
            if value is not None and not _WORD.match(value):
                raise ConfigError(f"{flag} must be one word without spaces or quotes (got {value!r})")
        if not (self.python.is_file() and os.access(self.python, os.X_OK)):
            raise ConfigError(f"--python must be an executable Python interpreter (got {self.python})")
        if not (self.chdir / "tune" / "sweep.py").is_file():
            raise ConfigError(f"--chdir must be a distgan checkout (no {self.chdir}/tune/sweep.py)")
        if self.script == "train" and (not self.args or self.args[0] not in TRAIN_STAGES):
            got = self.args[0] if self.args else "nothing"
            raise ConfigError(f"train runs one of {TRAIN_STAGES} with its flags after `--` (got {got!r})")


def template_path(script: str) -> Path:
    return REPO / "slurm" / f"{script}.sbatch"


def render(job: SlurmJob) -> str:
    """The batch script: the template's body under a header filled from `job`, its arguments baked in."""
    template = template_path(job.script)
    if not template.is_file():
        raise ConfigError(f"{template}: sbatch template missing (distgan slurm needs the source checkout)")
    lines = template.read_text().splitlines()
    # The template's own #SBATCH defaults are replaced, its comments and body kept.
    body = [line for line in lines[1:] if not line.startswith("#SBATCH")]
    name = job.job_name or f"distgan-{job.script}"
    header = {
        "job-name": name,
        "nodes": str(job.nodes),
        "ntasks-per-node": "1",  # one `ray start` or one torchrun agent per node
        "cpus-per-task": str(job.cpus_per_task),
        "time": job.time,
        "output": job.output or f"{name}-%j.out",
        "chdir": str(job.chdir),
        "partition": job.partition,
        "account": job.account,
        "mem": job.mem,
        "gpus-per-node": str(job.gpus_per_node) if job.gpus_per_node else None,
    }
    out = ["#!/usr/bin/env bash"]
    out += [f"#SBATCH --{key}={value}" for key, value in header.items() if value is not None]
    out += [f"# Rendered by: distgan slurm {job.script} (distgan/slurm.py) from {template}"]
    out.append(f"export DISTGAN_PYTHON={shlex.quote(str(job.python))}")
    out.append(f'export PATH={shlex.quote(str(job.python.parent))}:"$PATH"')
    if job.script == "train":
        out.append(f"export NPROC_PER_NODE={job.nproc_per_node or job.gpus_per_node or 1}")
    out.append(f"set -- {shlex.join(job.args)}" if job.args else "set --")
    return "\n".join(out + body) + "\n"


def submit(script_text: str, sbatch: str = "sbatch") -> str:
    """Hand the script to `sbatch` on its stdin; the job id."""
    try:
        done = subprocess.run([sbatch, "--parsable"], input=script_text, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as err:
        raise ConfigError(f"--submit: {sbatch} not found (is this a Slurm login node?)") from err
    if done.returncode != 0:
        raise ConfigError(f"--submit: sbatch refused the job: {done.stderr.strip()}")
    return done.stdout.strip().split(";")[0]  # "<id>" or "<id>;<cluster>"


def _slurm_stage(args) -> None:
    extra = list(args.args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    job = SlurmJob(
        script=args.script, args=tuple(extra), partition=args.partition, account=args.account, nodes=args.nodes,
        gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task, nproc_per_node=args.nproc_per_node,
        mem=args.mem, time=args.time, job_name=args.job_name, output=args.output, chdir=args.chdir.resolve(),
        python=args.python,
    )  # fmt: skip
    text = render(job)
    if args.out is not None:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    if args.submit:
        print(f"Submitted batch job {submit(text)}", file=sys.stderr if args.out is None else sys.stdout)
    # Leave without main()'s JSON line, so that stdout is the script alone (`> job.sbatch` works).
    raise SystemExit(0)


def add_slurm_parser(subparsers) -> argparse.ArgumentParser:
    """Register `distgan slurm sweep|train` on the CLI's subparsers."""
    defaults = SlurmJob.__dataclass_fields__
    slurm = subparsers.add_parser("slurm", help="render (and submit) slurm/sweep.sbatch or slurm/train.sbatch")
    scripts = slurm.add_subparsers(dest="script", required=True)
    for script, what in (("sweep", "tune/sweep.py's flags"), ("train", "train-gan|train-classifier and its flags")):
        p = scripts.add_parser(script, help=f"slurm/{script}.sbatch", description=__doc__)
        p.add_argument("--partition")
        p.add_argument("--account")
        p.add_argument("--nodes", type=int, default=defaults["nodes"].default)
        p.add_argument("--gpus-per-node", type=int, default=defaults["gpus_per_node"].default)
        p.add_argument("--cpus-per-task", type=int, default=defaults["cpus_per_task"].default, help="CPUs per node")
        if script == "train":
            p.add_argument("--nproc-per-node", type=int, help="workers per node (default: GPUs per node, else 1)")
        p.add_argument("--mem", help="memory per node, e.g. 64G")
        p.add_argument("--time", default=defaults["time"].default)
        p.add_argument("--job-name")
        p.add_argument("--output", help="the job's log file (%%j: job id)")
        p.add_argument("--chdir", type=absolute, default=REPO, help="the distgan checkout the job runs in")
        p.add_argument("--python", type=absolute, default=Path(sys.executable), help="the job's interpreter")
        p.add_argument("--out", type=absolute, help="write the script here instead of printing it")
        p.add_argument("--submit", action="store_true", help="submit with sbatch and print the job id")
        p.add_argument("args", nargs=argparse.REMAINDER, help=f"-- then {what}")
        p.set_defaults(run=_slurm_stage, nproc_per_node=None)
    return slurm


def wait_for_ray_nodes(address: str, expected: int, timeout_s: float, step_pids: list[int]) -> str:
    """Block until `expected` Ray nodes are alive at `address` (sweep.sbatch, after its `ray start` steps); the
    cluster's size in words. Fails at once when a `ray start` step has ended (e.g. a port in use)."""
    import time

    import ray

    def exited(pid: int) -> bool:  # an srun that ended is a zombie until the script waits for it
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + timeout_s
    while True:
        if any(exited(pid) for pid in step_pids):
            raise SystemExit("error: a `ray start` step ended before the cluster was up; its error is above")
        try:
            if not ray.is_initialized():
                ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            alive = [node for node in ray.nodes() if node["Alive"]]
        except ConnectionError:
            alive = []
        if len(alive) >= expected:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {len(alive)} of {expected} Ray nodes joined {address} within {timeout_s:.0f} s")
        time.sleep(2)
    total = ray.cluster_resources()
    return f"{len(alive)} nodes alive, {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"


if __name__ == "__main__":  # sweep.sbatch: python -m distgan.slurm ADDRESS NODES TIMEOUT_S STEP_PID...
    address, nodes, timeout_s, *pids = sys.argv[1:]
    cluster = wait_for_ray_nodes(address, int(nodes), float(timeout_s), [int(pid) for pid in pids])
    print(f"distgan sweep: Ray cluster up: {cluster}")
