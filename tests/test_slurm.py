"""Slurm launches on a real Slurm: a private two-node cluster (munged, slurmctld, two slurmd on this host),
the scripts rendered by `distgan slurm` and submitted with sbatch, their outputs checked.

Needs root and Debian's slurm-wlm and munge (.ci/run installs them); without them the tests fail and
say which line to run, rather than skip: the card asks for Slurm to be tested for real.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from slurm_cluster import APT_LINE, missing_programs, start_cluster

from distgan.errors import ConfigError
from distgan.slurm import SlurmJob, render

# One thread per worker: the Slurm run and the reference run compute the same thing bit for bit.
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "RAY_AUTH_MODE": "disabled"}
# As from a venv that was never activated: its bin is not on PATH, so a job that ran `python` or `ray` by name
# would get the system's (which has no torch); the rendered script names this interpreter instead.
VENV_BIN = str(Path(sys.executable).parent)
ENV["PATH"] = os.pathsep.join(part for part in ENV["PATH"].split(os.pathsep) if part != VENV_BIN)
ENV.pop("VIRTUAL_ENV", None)
# The jobs inherit this environment (sbatch --export=ALL): no dashboard process, to save the 2 CPUs.
ENV |= {"RAY_INCLUDE_DASHBOARD": "false"}


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    missing = missing_programs()
    if missing:
        pytest.fail(f"Slurm is not installed (missing {', '.join(missing)}): run `{APT_LINE}` as root")
    if os.geteuid() != 0:
        pytest.fail("the test Slurm cluster runs slurmd, which needs root")
    # A random first job id: job ids choose the Ray ports and temp dirs, and another test session
    # on this machine may run its own cluster at the same time.
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"), num_nodes=2, cpus_per_node=2,
                            first_job_id=random.randrange(1000, 10**6))  # fmt: skip
    cluster.env |= ENV
    yield cluster
    cluster.stop()
    for process in cluster.processes:
        assert process.poll() is not None, f"{process.args[0]} (pid {process.pid}) still running"


def distgan_slurm(cluster, *args: str) -> str:
    """`distgan slurm ...` as a user types it (with --submit among `args`); the job id."""
    done = subprocess.run([sys.executable, "-m", "distgan.cli", "slurm", *args], capture_output=True, text=True,
                          env=cluster.env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#!/usr/bin/env bash\n#SBATCH")  # the script was printed too
    return done.stderr.split("Submitted batch job ")[1].split()[0]


def test_render_fills_the_header_and_bakes_in_the_arguments(tmp_path):
    job = SlurmJob(script="train", args=("train-gan", "--out", "a b"), partition="gpu", nodes=4, gpus_per_node=8,
                   cpus_per_task=32, time="1-00:00:00", mem="200G")  # fmt: skip
    text = render(job)
    header = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert header == [
        "#SBATCH --job-name=distgan-train", "#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=32", "#SBATCH --time=1-00:00:00", "#SBATCH --output=distgan-train-%j.out",
        f"#SBATCH --chdir={REPO}", "#SBATCH --partition=gpu", "#SBATCH --mem=200G", "#SBATCH --gpus-per-node=8",
    ]  # fmt: skip
    assert "export NPROC_PER_NODE=8\nset -- train-gan --out 'a b'\n" in text
    assert f'export DISTGAN_PYTHON={sys.executable}\nexport PATH={VENV_BIN}:"$PATH"\n' in text
    # sbatch reads #SBATCH lines only before the first command: the header must come first.
    assert text.splitlines()[1].startswith("#SBATCH") and text.index("set -euo") > text.index("#SBATCH --gpus")
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.parametrize(
    ("fields", "flag"),
    [
        ({"nodes": 0}, "--nodes"),
        ({"time": "2 hours"}, "--time"),
        ({"partition": "gpu; rm -rf"}, "--partition"),
        ({"gpus_per_node": -1}, "--gpus-per-node"),
        ({"script": "train", "args": ("metrics",)}, "train runs one of"),
        ({"nproc_per_node": 2}, "--nproc-per-node"),  # sweep has no torchrun
    ],
)
def test_bad_job_is_refused_by_flag(fields, flag):
    with pytest.raises(ConfigError, match=flag):
        SlurmJob(**({"script": "sweep"} | fields))


def test_train_job_on_two_nodes_matches_torchrun_on_one(slurm, digits_shards, tmp_path):
    """train.sbatch: two Slurm nodes × one torchrun worker form one world of 2; same scores as plain torchrun."""
    train, test = str(digits_shards / "train"), str(digits_shards / "test")
    stage = ["train-classifier", "--train", train, "--test", test, "--classifier.arch", "small_cnn",
             "--classifier.epochs", "2", "--classifier.warmup-fraction", "0",
             "--classifier.batch-size", "64"]  # fmt: skip
    log = tmp_path / "train-%j.out"
    job_id = distgan_slurm(slurm, "train", "--nodes", "2", "--cpus-per-task", "1", "--time", "20", "--output",
                           str(log), "--submit", "--", *stage, "--out", str(tmp_path / "slurm"))  # fmt: skip
    state = slurm.wait_job(job_id, timeout=600)
    output = Path(str(log).replace("%j", job_id)).read_text()
    assert state == "COMPLETED", output[-4000:]
    assert "2 node(s) × 1 worker(s)" in output
    assert slurm.job_field(job_id, "NodeList") == "node[0-1]"
    scores = json.loads((tmp_path / "slurm" / "scores.json").read_text())

    reference = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "distgan.cli", *stage,
         "--out", str(tmp_path / "torchrun")],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads((tmp_path / "torchrun" / "scores.json").read_text())
    assert scores["num_test_samples"] == expected["num_test_samples"] == 360
    assert scores["top1_error"] == expected["top1_error"] and scores["top5_error"] == expected["top5_error"]


def test_sweep_job_starts_ray_on_both_nodes_and_tears_it_down(slurm, quick_sweep, tmp_path):
    """Into the main job's results directory, as a user's next sweep on shared storage: the shared artifacts are
    cache hits and the job's Ray cluster runs the two trials."""
    results = quick_sweep[0].parent
    sweep = ["--quick", "--name", "slurm", "--knob-values", "1.0", "--classifier.epochs", "1",
             "--results-dir", str(results)]  # fmt: skip
    log = tmp_path / "sweep-%j.out"
    job_id = distgan_slurm(slurm, "sweep", "--nodes", "2", "--cpus-per-task", "2", "--time", "20",
                           "--output", str(log), "--submit", "--", *sweep)  # fmt: skip
    state = slurm.wait_job(job_id, timeout=900)
    output = Path(str(log).replace("%j", job_id)).read_text()
    assert state == "COMPLETED", output[-6000:]
    assert "Ray cluster up: 2 nodes alive, 4 CPUs, 0 GPUs" in output
    assert "cache hit, generator" in output
    assert "Table 1" in (results / "slurm" / "report.md").read_text()
    # Two concurrent trials of 2 CPUs each (a driver of 1 CPU, 2 workers of 0.5) on two nodes of 2 CPUs: whichever
    # way Ray packs the drivers and workers, together they occupy both Slurm nodes.
    trials = [json.loads(path.read_text()) for path in results.glob("slurm/trials/*/result.json")]
    assert len(trials) == 2, trials
    used = {node for trial in trials for node in [trial["node"]["ray_node_id"], *trial["worker_nodes"]]}
    assert len(used) == 2, [(trial["node"], trial["worker_nodes"]) for trial in trials]
    # Torn down: the per-job temp dir is gone and no process of this job's Ray is left.
    assert "Ray cluster stopped" in output
    temp_root = output.split(", temp ")[1].split()[0]  # the script's first line names it
    assert temp_root.endswith(f"/ray-{job_id}")
    assert not Path(temp_root).exists()
    leftover = subprocess.run(["pgrep", "-f", temp_root], capture_output=True, text=True).stdout.split()
    assert leftover == [], f"Ray processes of job {job_id} still running: {leftover}"


def test_failed_sweep_still_tears_the_ray_cluster_down(slurm, tmp_path):
    """A sweep that fails after Ray is up (an unknown space) fails the job and leaves no Ray behind."""
    log = tmp_path / "failed-%j.out"
    job_id = distgan_slurm(slurm, "sweep", "--nodes", "1", "--cpus-per-task", "2", "--time", "20",
                           "--output", str(log), "--submit", "--", "--space", "no-such-space")  # fmt: skip
    state = slurm.wait_job(job_id, timeout=600)
    output = Path(str(log).replace("%j", job_id)).read_text()
    assert state == "FAILED" and slurm.job_field(job_id, "ExitCode") == "2:0", output[-4000:]
    assert "Ray cluster up: 1 nodes alive, 2 CPUs" in output and "unknown space 'no-such-space'" in output
    assert "stopping the Ray cluster (exit status 2)" in output and "Ray cluster stopped" in output
    temp_root = output.split(", temp ")[1].split()[0]
    assert not Path(temp_root).exists()
    assert subprocess.run(["pgrep", "-f", temp_root], capture_output=True).stdout == b""
