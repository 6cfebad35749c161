"""The GPU paths, checked on this CPU machine (issue 14): collectives on the device the process group serves,
DeepSpeed with bf16, the device Ray Train assigned, one collective backend, files loaded without running code,
and `metrics --save-real-stats` under torchrun. Where only a GPU is missing, `torch.cuda.is_available` and
`device_count` stand in for it; nothing else is faked."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

from distgan.config import GanConfig
from distgan.data import dali_pipeline
from distgan.errors import ConfigError, DataError
from distgan.metrics.extraction import ImageSource, extract
from distgan.metrics.extractors import build_extractor, wrap_model
from distgan.metrics.inputs import shard_image_set
from distgan.models.classifiers import build_classifier, load_classifier, save_classifier

# One thread per rank: two ranks do not oversubscribe two cores. DeepSpeed's JIT-compiled extension is built once
from distgan.models.gan import load_generator
from distgan.runtime import distributed
from distgan.train import launch
from distgan.train.checkpoint import load_training_checkpoint
from distgan.train.classifier import evaluate_classifier
from distgan.train.gan import build_gan, save_generator

# into a folder kept between runs (the repository's ignored .cache/).
ENV = os.environ | {
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
    "RAY_AUTH_MODE": "disabled",
    "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions")),
}
NO_BACKEND_FOR_CPU = "No backend type associated with device type cpu"


def run(command: list[str], timeout: int, **env: str) -> subprocess.CompletedProcess:
    """Run a command; past `timeout`, stop it and fail. torchrun starts its workers in sessions of their own: it is
    sent SIGTERM, on which it stops them, and only then, if it is still there, killed with its process group."""
    process = subprocess.Popen(
        command, cwd=REPO, env=ENV | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command[:7])} ... still running after {timeout} s:\n{stderr[-4000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def torchrun(*args: str, timeout: int, **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", *args], timeout, **env)


@pytest.fixture
def fake_gpus(monkeypatch):
    """A node with `count` CUDA devices (this machine has none), outside Ray Train."""
    monkeypatch.setattr(distributed, "_placed_device", None)

    def have(count: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    return have


# 1. Collectives run on the device the process group serves.


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("classifier") / "model.pt"
    with torch.random.fork_rng():  # random weights, without moving the other tests' generator
        torch.manual_seed(0)
        model = build_classifier("small_cnn", 1, 10)
    save_classifier(path, model, arch="small_cnn", in_channels=1, num_classes=10)
    return path


def test_evaluation_and_gather_on_two_gloo_ranks_equal_one_process(classifier_file, tmp_path):
    done = torchrun(str(REPO / "tests" / "collective_job.py"), "gloo", str(classifier_file), str(tmp_path), timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    from distgan.data.sources import load_split

    test = load_split("digits", "test", image_size=16)
    model = load_classifier(classifier_file)
    alone = extract(wrap_model("domain", model), ImageSource.from_array(test.images_NHWC, test.labels_N),
                    batch_size=50, keep_logits=True, keep_features=True)  # fmt: skip
    for rank in (0, 1):
        found = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert found["collective_device"] == "cpu"  # gloo serves CPU tensors
        assert found["scores"] == evaluate_classifier(model, test)
        torch.testing.assert_close(found["logits_NK"], alone.logits_NK, rtol=0, atol=1e-6)
        torch.testing.assert_close(found["feats_ND"], alone.feats_ND, rtol=0, atol=1e-6)
        assert found["count"] == alone.stats.count == 360
        torch.testing.assert_close(found["sum_D"], alone.stats.sum_D)


def test_a_group_that_serves_only_cuda_gets_cuda_tensors(classifier_file, tmp_path):
    # gloo registered for the cuda device type alone refuses CPU tensors as NCCL does. Without a GPU no collective
    # can complete in it (gloo moves only CPU and CUDA tensors), so the test sees where the tensors were sent.
    done = torchrun(str(REPO / "tests" / "collective_job.py"), "cuda:gloo", str(classifier_file), str(tmp_path),
                    timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    for rank in (0, 1):
        found = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert found["collective_device"] == f"cuda:{rank}"  # this rank's GPU (LOCAL_RANK)
        assert NO_BACKEND_FOR_CPU in found["cpu_all_reduce"]  # the refusal the counts and gathers met
        for collective in ("evaluate", "gather"):  # now stopped only by the missing GPU, on the way to it
            assert found[collective] == "AssertionError: Torch not compiled with CUDA enabled", found[collective]


# 2. DeepSpeed with bf16.


def test_deepspeed_with_bf16_trains_the_gan_and_the_classifier(tmp_path):
    out = tmp_path / "bf16.json"
    done = torchrun(str(REPO / "tests" / "bf16_job.py"), str(out), timeout=480, DISTGAN_PRECISION="bf16")
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(out.read_text())
    (gan_losses,) = seen["gan_losses"]
    assert np.isfinite([gan_losses["d_loss"], gan_losses["g_loss"], *seen["classifier_train_losses"]]).all()
    # The forwards ran in bf16, over fp32 weights that then serve fp32 evaluation and sampling.
    assert seen["gan_conv_output_dtypes"] == seen["classifier_conv_output_dtypes"] == ["torch.bfloat16"]
    assert seen["evaluation_conv_output_dtypes"] == seen["parameter_dtypes"] == ["torch.float32"]
    assert seen["num_samples"] == 8


def test_precision_is_decided_once_and_can_be_forced(monkeypatch):
    monkeypatch.delenv(distributed.PRECISION_ENV, raising=False)
    assert distributed.autocast_dtype(torch.device("cpu")) is None
    assert distributed.autocast_dtype(torch.device("cuda", 0)) == torch.bfloat16
    monkeypatch.setenv(distributed.PRECISION_ENV, "bf16")
    assert distributed.autocast_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setenv(distributed.PRECISION_ENV, "fp16")
    with pytest.raises(ConfigError, match="DISTGAN_PRECISION must be auto, bf16 or fp32 \\(got 'fp16'\\)"):
        distributed.autocast_dtype(torch.device("cpu"))


# 3. and 4. The device: Ray Train's where it assigned one, else LOCAL_RANK's; one collective backend.


def test_the_device_follows_local_rank_outside_ray_train(fake_gpus, monkeypatch):
    fake_gpus(0)
    assert distributed.local_device() == torch.device("cpu")
    assert dali_pipeline.decoder_placement() == (None, "cpu")
    fake_gpus(2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.local_device() == torch.device("cuda", 1)
    assert dali_pipeline.decoder_placement() == (1, "mixed")  # DALI decodes on the same GPU
    # A launcher that shows each process only its own GPU: LOCAL_RANK 1 has no GPU 1.
    fake_gpus(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    named = r"LOCAL_RANK 1 needs GPU 1, but this process sees 1 \(CUDA_VISIBLE_DEVICES=1\)"
    with pytest.raises(ConfigError, match=named):
        distributed.local_device()


def test_under_ray_train_the_device_is_the_one_ray_assigned(tmp_path):
    done = run([sys.executable, str(REPO / "tests" / "ray_device_job.py"), str(tmp_path)], timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    gpu = [json.loads((tmp_path / f"gpu-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [seen["local_rank"] for seen in gpu] == [0, 1]
    assert [seen["cuda_visible_devices"] for seen in gpu] == ["0,1,2,3"] * 2
    assert [seen["device"] for seen in gpu] == [seen["ray_device"] for seen in gpu] == ["cuda:0", "cuda:2"]
    assert {seen["chosen_backend"] for seen in gpu} == {"nccl"}  # what `launch` asks Ray Train for GPU workers
    # CPU workers: the group Ray Train made from what `launch` asked is the one the workers would choose.
    for rank in (0, 1):
        cpu = json.loads((tmp_path / f"cpu-rank{rank}.json").read_text())
        assert cpu["device"] == cpu["collective_device"] == "cpu"
        assert cpu["group_backend"] == cpu["chosen_backend"] == "gloo"


def test_fractional_gpus_are_refused_for_multi_worker_jobs(tmp_path):
    def job(workers: int, gpus: float) -> launch.Launch:
        return launch.Launch(workers=workers, cpus_per_worker=1, gpus_per_worker=gpus, storage_dir=tmp_path,
                             in_tune_trial=False)  # fmt: skip

    with pytest.raises(ConfigError, match=r"--gpus-per-worker 0\.5 with --workers-per-trial 2: .* whole GPUs"):
        job(2, 0.5)
    for workers, gpus in ((1, 0.5), (2, 1), (2, 2), (4, 0)):  # one worker may share a GPU; whole GPUs; CPU workers
        job(workers, gpus)


def test_one_collective_backend_per_device_type(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)  # a CUDA build of torch
    assert distributed.collective_backend("cuda") == "nccl"
    assert distributed.collective_backend("cpu") == "gloo"
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: False)  # this CPU build: GPUs Ray accounts
    assert distributed.collective_backend("cuda") == "gloo"


# 5. Files are loaded without running code.


class RunsCode:
    """A pickle that, when loaded, creates `marker`: what a crafted generator.pt or checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_generator_file_holds_only_tensors_and_plain_values(tmp_path):
    cfg = GanConfig(g_width=8, d_width=8)
    generator, _ = build_gan(cfg, num_classes=10, image_size=16, channels=1)
    save_generator(tmp_path / "generator.pt", generator, cfg, image_size=16, channels=1)
    restored = load_generator(tmp_path / "generator.pt")
    for key, value in generator.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value, rtol=0, atol=0)

    live = tmp_path / "live-marker"
    torch.save({"gan_config": RunsCode(live)}, tmp_path / "live.pt")
    torch.load(tmp_path / "live.pt", weights_only=False)
    assert live.exists()  # the crafted file does run code when unpickled

    marker, crafted = tmp_path / "marker", tmp_path / "crafted.pt"
    torch.save({"gan_config": RunsCode(marker), "state_dict": generator.state_dict()}, crafted)
    named = rf"^{re.escape(str(crafted))}: refused to load an object of (builtins|io)\.open"
    with pytest.raises(DataError, match=named):
        load_generator(crafted)
    assert not marker.exists()


def test_a_crafted_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "latest").write_text("step000000001\n")
    rank_file = tmp_path / "step000000001" / "rank0.pt"
    rank_file.parent.mkdir()
    # torch.save's legacy (pre-zip) format, which torch.load still reads.
    torch.save({"position": RunsCode(marker)}, rank_file, _use_new_zipfile_serialization=False)
    with pytest.raises(DataError, match=rf"^{re.escape(str(rank_file))}: refused to load"):
        load_training_checkpoint(tmp_path, {})
    assert not marker.exists()


# 6. `metrics --save-real-stats` under torchrun.


def test_save_real_stats_under_torchrun(digits_shards, tmp_path):
    trained = run([sys.executable, "-m", "distgan.cli", "train-classifier",
                   "--train", str(digits_shards / "train"), "--test", str(digits_shards / "test"),
                   "--out", str(tmp_path / "domain"), "--classifier.arch", "small_cnn",
                   "--classifier.epochs", "2", "--classifier.batch-size", "64"], timeout=300)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-4000:]
    model, stats = tmp_path / "domain" / "model.pt", tmp_path / "real.npz"
    done = torchrun("-m", "distgan.cli", "metrics", "--real", str(digits_shards / "train"),
                    "--fake", str(digits_shards / "test"), "--metrics", "fid", "--extractor", "domain",
                    "--domain-model", str(model), "--save-real-stats", str(stats), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout)["real_stats"] == str(stats)
    # Equal to the statistics of one process.
    alone = extract(build_extractor("domain", model), shard_image_set(digits_shards / "train").source,
                    keep_logits=False).stats.mean_and_covariance()  # fmt: skip
    with np.load(stats) as saved:
        assert sorted(saved.files) == ["mu", "sigma"]
        np.testing.assert_allclose(saved["mu"], alone[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(saved["sigma"], alone[1], rtol=1e-10, atol=1e-12)
