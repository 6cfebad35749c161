"""The sweep's pre-flight (`distgan.sweep.run`): a user's generator that breaks its contract is refused on the driver
before any work (a two-image probe), and a user's error inside a trial ends that trial with one line, not retried."""

import textwrap
from pathlib import Path

import pytest

import distgan.sweep
from distgan.experiments import sweep as sweep_module
from distgan.experiments.sweep import TrialsFailed
from distgan.layout import SweepPaths

GENERATOR = """
import torch


class Generator:
    image_size, channels, knob = 16, 1, "guidance"

    def sample(self, labels, knob_value, generator):
{body}


def make(num_classes, device):
    return Generator()
"""
FLOAT_IMAGES = "return torch.rand(len(labels), 16, 16, 1, generator=generator)"
WRONG_SIZE = "return torch.zeros(len(labels), 8, 8, 1, dtype=torch.uint8)"
WRONG_CHANNELS = "return torch.zeros(len(labels), 16, 16, 3, dtype=torch.uint8)"
RAISES = "raise RuntimeError('CUDA out of memory')"


def write_generator(directory: Path, body: str) -> str:
    path = directory / "gen.py"
    path.write_text(GENERATOR.format(body=textwrap.indent(body, " " * 8)))
    return f"{path}:make"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (FLOAT_IMAGES, "sample returned dtype torch.float32, the contract is torch.uint8"),
        (WRONG_SIZE, "sample returned images of shape (H, W, C) = (8, 8, 1)"),
        (WRONG_CHANNELS, "sample returned images of shape (H, W, C) = (16, 16, 3)"),
        (RAISES, "sample() raised RuntimeError: CUDA out of memory"),
    ],
    ids=["float-images", "wrong-size", "wrong-channels", "raises"],
)
def test_a_generator_that_breaks_its_contract_is_refused_before_ray_starts(
    tmp_path, monkeypatch, capsys, body, message
):
    reached = []
    monkeypatch.setattr(sweep_module, "start_ray", lambda cfg: reached.append(cfg))  # past the pre-flight
    target = write_generator(tmp_path, body)
    code = distgan.sweep.main(["--quick", "--results-dir", str(tmp_path / "results"), "--generator.kind", "python",
                               "--generator.target", target, "--knob-values", "1,2"])  # fmt: skip
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and message in line and not reached, err[-2000:]
    assert "Traceback" not in err
    assert not SweepPaths(tmp_path / "results", "replacement-digits-quick").out_dir.exists()  # no trial, no config


def test_a_gan_space_refuses_a_users_generator_before_reading_the_data(tmp_path, capsys):
    target = write_generator(tmp_path, WRONG_SIZE)
    code = distgan.sweep.main(["--quick", "--space", "gan-test", "--results-dir", str(tmp_path / "results"),
                               "--generator.kind", "python", "--generator.target", target])  # fmt: skip
    assert code == 2 and "trains its own GANs" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()  # not even the real shards


# Passes the probe (two images at the first knob value); at the second knob value it raises: a user's error that
# every retry would meet again. Each call at that value leaves a line in CALLS.
MIDWAY = """
if knob_value == 2.0:
    with open({calls!r}, "a") as calls:
        calls.write("called\\n")
    raise ValueError("no guidance above 1.5 in this model")
return torch.full((len(labels), 16, 16, 1), 100, dtype=torch.uint8)
"""


def test_a_user_error_in_a_trial_ends_it_in_one_line_without_a_retry(tmp_path, ray_session):
    calls = tmp_path / "calls.txt"
    target = write_generator(tmp_path, MIDWAY.format(calls=str(calls)).strip())
    cfg, _ = distgan.sweep.parse_config([
        "--quick", "--results-dir", str(tmp_path / "results"), "--generator.kind", "python", "--generator.target",
        target, "--knob-values", "1,2", "--include-real", "false", "--max-failures", "2", "--workers-per-trial", "1",
        "--cpus-per-worker", "1", "--classifier.epochs", "1", "--metrics.extractor-epochs", "1",
    ])  # fmt: skip
    with pytest.raises(TrialsFailed) as failed:
        distgan.sweep.run(cfg)
    message = str(failed.value)
    assert "1 trial(s) failed (guidance2: GeneratorError: " in message
    assert "no guidance above 1.5 in this model" in message and "\n" not in message
    assert calls.read_text().count("called") == 1  # not retried, although --max-failures 2 allows two retries
    trials = SweepPaths(tmp_path / "results", cfg.name).trials_dir
    assert (trials / "guidance1" / "result.json").is_file()  # the other trial finished
