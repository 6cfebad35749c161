"""`distgan prepare` (JPEG, shard limits, parallel, image folders), `distgan mix`, and `--on-bad-sample`
reaching scores.json, driven as a user would."""

import io
import json
import subprocess
import sys
import tarfile

import numpy as np
from PIL import Image

from distgan.data.manifest import read_manifest
from distgan.data.shards import read_shards
from distgan.runtime.hashing import sha256_of


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distgan.cli", *args], capture_output=True, text=True, timeout=300)


def distgan(*args: str) -> dict:
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_prepare_jpeg_with_limits_then_mix(tmp_path):
    out = tmp_path / "real"
    prepared = distgan(
        "prepare", "digits", "--out", str(out), "--image-size", "16", "--image-format", "jpeg",
        "--jpeg-quality", "90", "--shard-max-samples", "600", "--shard-max-bytes", "1000000", "--workers", "2",
    )  # fmt: skip
    assert prepared["train"]["num_samples"] == 1437
    manifest = read_manifest(out / "train")
    assert manifest["image_format"] == "jpeg" and manifest["format_version"] == 2
    assert all(s["num_samples"] <= 600 and s["num_bytes"] <= 1_000_000 + 10_240 for s in manifest["shards"])
    assert all((out / "train" / s["index"]).is_file() for s in manifest["shards"])

    mixed = distgan(
        "mix", "--real", str(out / "train"), "--synthetic", str(out / "test"), "--synthetic-fraction", "0.2",
        "--out", str(tmp_path / "mix"),
    )  # fmt: skip
    assert mixed["num_samples"] == 1437 + round(0.2 * 1437)  # the 360 test images can supply 20 %
    components = read_manifest(tmp_path / "mix")["provenance"]["components"]
    assert [c["role"] for c in components] == ["real", "synthetic"] and components[1]["num_samples"] == 287

    bad = run_cli("mix", "--real", str(out / "train"), "--synthetic", str(out / "test"), "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--synthetic-fraction must be > 0" in bad.stderr
    bad = run_cli("prepare", "digits", "--out", str(tmp_path / "q"), "--image-format", "jpeg", "--jpeg-quality", "0")
    assert bad.returncode == 2 and "--jpeg-quality must be in [1, 100] (got 0)" in bad.stderr


def test_prepare_image_folder_resizes(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / "tree" / split / name).mkdir(parents=True)
            for i in range(2):
                pixels = rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "tree" / split / name / f"{i}.JPEG")
    prepared = distgan(
        "prepare", "image_folder", "--path", str(tmp_path / "tree"), "--out", str(tmp_path / "s"), "--image-size", "12"
    )
    assert prepared["test"] == {"num_samples": 4, "class_counts": [2, 2]}
    assert read_shards(tmp_path / "s" / "train").images_NHWC.shape == (4, 12, 12, 3)


def _break_one_png(shard):
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in members:
            data = b"\x89PNG broken" if member.name == "00000003.png" else data
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_on_bad_sample_skip_count_lands_in_scores(tmp_path):
    distgan("prepare", "digits", "--out", str(tmp_path / "real"), "--image-size", "8")
    train = tmp_path / "real" / "train"
    _break_one_png(train / "shard-000000.tar")
    manifest = json.loads((train / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = sha256_of(train / "shard-000000.tar")  # damage in a sample, not a changed shard
    (train / "manifest.json").write_text(json.dumps(manifest))
    args = ["train-classifier", "--train", str(train), "--test", str(tmp_path / "real" / "test"),
            "--classifier.arch", "small_cnn", "--classifier.epochs", "1", "--classifier.batch-size", "256",
            "--classifier.warmup-fraction", "0"]  # fmt: skip
    failed = run_cli(*args, "--out", str(tmp_path / "a"))
    assert failed.returncode == 2 and "shard-000000.tar key 00000003: PNG cannot be decoded" in failed.stderr
    scores = distgan(*args, "--out", str(tmp_path / "b"), "--on-bad-sample", "skip")
    assert scores["num_skipped_samples"] == 1
    written = json.loads((tmp_path / "b" / "scores.json").read_text())
    assert written["num_train_samples"] == 1436 and "00000003" in written["skip_reasons"][0]


def test_prepare_one_npz_file_writes_disjoint_splits_and_records_the_split(tmp_path):
    """`distgan prepare npz --path A.npz` once wrote the same 1,200 images as train and as test."""
    x = np.random.default_rng(0).integers(0, 256, (1200, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "A.npz", x=x, y=np.arange(1200) % 10)
    prepared = distgan("prepare", "npz", "--path", str(tmp_path / "A.npz"), "--out", str(tmp_path / "shards"))
    assert prepared["train"]["num_samples"] == 960 and prepared["test"]["num_samples"] == 240
    rule = read_manifest(tmp_path / "shards" / "test")["provenance"]["split_rule"]
    assert rule["method"] == "stratified" and rule["seed"] == 0 and rule["from"] == str(tmp_path / "A.npz")


def test_real_train_and_test_that_share_images_are_refused_naming_both(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (100, 8, 8, 1), dtype=np.uint8)
    y = np.arange(100) % 10
    np.savez(tmp_path / "train.npz", x=x[:80], y=y[:80])
    np.savez(tmp_path / "test.npz", x=np.concatenate([x[80:], x[5:8]]), y=np.concatenate([y[80:], y[5:8]]))
    done = run_cli("prepare", "npz", "--path", str(tmp_path), "--out", str(tmp_path / "shards"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{tmp_path / 'shards' / 'train'} and {tmp_path / 'shards' / 'test'} share 3 image(s)" in done.stderr
    # The same pair given to train-classifier is refused before any training.
    done = run_cli(
        "train-classifier", "--train", str(tmp_path / "shards" / "train"), "--test", str(tmp_path / "shards" / "test"),
        "--out", str(tmp_path / "clf"),
    )  # fmt: skip
    assert done.returncode == 2 and "share 3 image(s)" in done.stderr and not (tmp_path / "clf").exists()
