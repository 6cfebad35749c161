"""The `distgan` stages chained as a user would: prepare → train-gan → sample → train-classifier → metrics."""

import json
import subprocess
import sys

from distgan.data.shards import read_manifest


def distgan(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "distgan.cli", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_stages_chain_on_digits(tmp_path):
    prepared = distgan("prepare", "digits", "--out", str(tmp_path / "real"), "--image-size", "16")
    assert prepared["train"]["num_samples"] == 1437 and prepared["test"]["num_samples"] == 360

    gan = distgan(
        "train-gan", "--data", str(tmp_path / "real" / "train"), "--out", str(tmp_path / "gan"),
        "--gan.iterations", "20", "--gan.g-width", "8", "--gan.d-width", "8",
    )  # fmt: skip
    assert len(gan["sha256"]) == 64

    distgan(
        "sample", "--generator", gan["generator"], "--like", str(tmp_path / "real" / "train"),
        "--truncation", "0.5", "--out", str(tmp_path / "fake"),
    )  # fmt: skip
    manifest = read_manifest(tmp_path / "fake")
    assert manifest["provenance"]["truncation"] == 0.5 and manifest["provenance"]["generator_sha256"] == gan["sha256"]
    assert manifest["class_counts"] == read_manifest(tmp_path / "real" / "train")["class_counts"]

    scores = distgan(
        "train-classifier", "--train", str(tmp_path / "real" / "train"), "--test", str(tmp_path / "real" / "test"),
        "--out", str(tmp_path / "clf"), "--classifier.arch", "small_cnn",
        "--classifier.epochs", "6", "--classifier.batch-size", "64",
    )  # fmt: skip
    assert scores["top1_error"] < 0.5 and scores["num_test_samples"] == 360

    quality = distgan(
        "metrics", "--real", str(tmp_path / "real" / "train"), "--fake", str(tmp_path / "fake"),
        "--extractor", "domain", "--domain-model", str(tmp_path / "clf" / "model.pt"),
    )  # fmt: skip
    assert quality["fid"] > 0 and 1 <= quality["inception_score_mean"] <= 10


def test_wrong_shard_directory_is_named(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "distgan.cli",
            "metrics",
            "--real",
            str(tmp_path),
            "--fake",
            str(tmp_path),
            "--extractor",
            "domain",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and f"{tmp_path}/manifest.json: no shard manifest" in done.stderr
