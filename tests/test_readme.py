"""The README's "Stages one at a time", as written, from a fresh copy of the checkout (relative paths), each
stage's output checked where the README says it lands. The stages run in this process through the `distgan`
command's own entry (`distgan.cli.main`, given the typed arguments); the command as a process is typed in
test_sweep.py (`distgan report`)."""

import contextlib
import io
import json

import pytest
from helpers import readme_commands, working_directory

from distgan import cli
from distgan.data.manifest import read_manifest

STAGES = readme_commands("## Stages one at a time")


@pytest.fixture(scope="module")
def stages(checkout) -> dict[str, dict]:
    """{stage name: the JSON it printed}, the README's stages run in order in the checkout."""
    printed = {}
    for argv in STAGES:
        assert argv[0] == "distgan", argv
        stdout = io.StringIO()
        with working_directory(checkout), contextlib.redirect_stdout(stdout):
            code = cli.main(argv[1:])
        assert code == 0, f"{' '.join(argv)}: exit {code}\n{stdout.getvalue()[-3000:]}"
        printed[argv[1] + (f" {argv[argv.index('--out') + 1]}" if "--out" in argv else "")] = json.loads(
            stdout.getvalue()
        )
    return printed


def test_readme_lists_every_stage_with_relative_paths():
    assert [argv[:2] for argv in STAGES] == [
        ["distgan", "prepare"], ["distgan", "train-gan"], ["distgan", "sample"], ["distgan", "train-classifier"],
        ["distgan", "train-classifier"], ["distgan", "metrics"], ["distgan", "mix"],
    ]  # fmt: skip
    assert not [arg for argv in STAGES for arg in argv if arg.startswith("/")]


def test_stages_chain_where_the_readme_says(stages, checkout):
    prepared = stages["prepare data/digits"]
    assert prepared["train"]["num_samples"] == 1437 and prepared["test"]["num_samples"] == 360
    gan = stages["train-gan runs/gan"]
    assert gan["generator"] == str(checkout / "runs" / "gan" / "generator.pt") and len(gan["sha256"]) == 64

    manifest = read_manifest(checkout / "data" / "tau0.5")
    sampled = stages["sample data/tau0.5"]
    assert manifest["provenance"]["knob_value"] == 0.5 and manifest["provenance"]["sampling"]["knob"] == "truncation"
    assert sampled["generator_sha256"] == manifest["provenance"]["sampling"]["generator"]["sha256"] == gan["sha256"]
    assert manifest["class_counts"] == read_manifest(checkout / "data" / "digits" / "train")["class_counts"]

    real, synthetic = stages["train-classifier runs/real"], stages["train-classifier runs/tau0.5"]
    assert real["top1_error"] < 0.5 and real["num_test_samples"] == synthetic["num_test_samples"] == 360
    assert (checkout / "runs" / "real" / "model.pt").is_file()  # the domain extractor of the metrics stage

    quality = stages["metrics"]
    assert quality["fid"] > 0 and 1 <= quality["inception_score_mean"] <= 10
    assert 0 <= quality["precision"] <= 1 and "kid_mean" in quality and len(quality["per_class"]) == 10

    mixed = stages["mix data/real+50"]
    assert mixed["num_samples"] == 1437 + round(0.5 * 1437)
