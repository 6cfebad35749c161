"""The training engine for real: DDP and DeepSpeed on gloo under torchrun, equivalence of backends and
of batch splits, and exact resume after SIGKILL in the middle of an epoch."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO

JOB = REPO / "tests" / "engine_job.py"
# One thread per rank: runs are bit-reproducible and two ranks do not oversubscribe two cores.
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def torchrun(nproc: int, *args: str, timeout: int = 300, **popen) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=REPO, **popen)


def engine_weights(tmp_path, nproc: int, backend: str, global_batch: int, accum: int) -> dict:
    out = tmp_path / f"{backend}-{nproc}-{global_batch}-{accum}.pt"
    done = torchrun(nproc, str(JOB), str(out), backend, str(global_batch), str(accum))
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out, weights_only=True)


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


@pytest.fixture(scope="module")
def ddp_two_workers(tmp_path_factory):
    return engine_weights(tmp_path_factory.mktemp("ddp"), 2, "ddp", 64, 1)


def test_two_workers_equal_one_worker_with_twice_the_batch(ddp_two_workers, tmp_path):
    one_worker = engine_weights(tmp_path, 1, "ddp", 64, 1)
    assert_same_weights(ddp_two_workers, one_worker, atol=1e-5)
    accumulated = engine_weights(tmp_path, 1, "ddp", 64, 2)  # 2 micro-batches of 32 per step
    assert_same_weights(one_worker, accumulated, atol=1e-5)
    # DeepSpeed in a torchrun world of one joins the launcher's store (it once hung on a private one).
    assert_same_weights(one_worker, engine_weights(tmp_path, 1, "deepspeed", 64, 1), atol=1e-5)


def test_deepspeed_zero1_equals_ddp(ddp_two_workers, tmp_path):
    deepspeed = engine_weights(tmp_path, 2, "deepspeed", 64, 1)
    assert_same_weights(ddp_two_workers, deepspeed, atol=1e-5)
    initial = engine_weights(tmp_path, 2, "ddp", 64, 1)
    assert_same_weights(ddp_two_workers, initial, atol=0)  # and the runs are reproducible to the bit


def classifier_run(shards, out: str, backend: str) -> list[str]:
    return [
        "-m", "distgan.cli", "train-classifier",
        "--train", str(shards / "train"), "--test", str(shards / "test"), "--out", out,
        "--classifier.arch", "small_cnn", "--classifier.epochs", "4", "--classifier.batch-size", "64",
        "--engine.backend", backend, "--engine.checkpoint-every-steps", "7",
    ]  # fmt: skip


@pytest.mark.parametrize("backend", ["ddp", "deepspeed"])
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, digits_shards, backend):
    whole = torchrun(2, *classifier_run(digits_shards, str(tmp_path / "whole"), backend))
    assert whole.returncode == 0, whole.stderr[-4000:]

    # Kill the whole torchrun process group once a checkpoint in the middle of epoch 2 exists
    # (23 steps per epoch at 2 × 32: step 35 is mid-epoch), then run the same command again.
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += classifier_run(digits_shards, str(tmp_path / "killed"), backend)
    run = subprocess.Popen(
        command, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 240
    while not (latest.is_file() and latest.read_text().strip() >= "step000000035"):
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "no mid-run checkpoint appeared"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not (tmp_path / "killed" / "model.pt").exists()
    resumed = torchrun(2, *classifier_run(digits_shards, str(tmp_path / "killed"), backend))
    assert resumed.returncode == 0, resumed.stderr[-4000:]

    final = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)["state_dict"]
    reference = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    assert_same_weights(final, reference, atol=1e-6)


def _worker_pids_of_rank(marker: str, rank: str) -> list[int]:
    """Worker processes (not the torchrun agent) whose command line holds `marker` and whose RANK is `rank`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if marker in cmdline and "torch.distributed.run" not in cmdline and f"RANK={rank}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def test_a_dying_worker_takes_the_job_down_within_a_bounded_time(tmp_path, digits_shards):
    out = tmp_path / "doomed"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += classifier_run(digits_shards, str(out), "ddp") + ["--classifier.epochs", "200"]
    run = subprocess.Popen(command, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not (out / "checkpoints" / "latest").is_file():  # training is under way
        assert run.poll() is None and time.time() < deadline, "training did not start"
        time.sleep(0.2)
    victims = _worker_pids_of_rank(str(out), "1")
    assert len(victims) == 1
    os.kill(victims[0], signal.SIGKILL)
    killed_at = time.time()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode != 0
    assert time.time() - killed_at < 60, "the surviving rank hung"
    assert "Signals.SIGKILL" in stderr or "exitcode  : -9" in stderr  # torchrun names the dead worker
    assert not _worker_pids_of_rank(str(out), "0")  # and no rank is left behind
