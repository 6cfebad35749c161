"""Sampling a generator into shards: the set is what the generator makes from (seed, shard) generators, the same on
1 and 2 gloo workers and with any number of encoding processes (none of them forked from the sampler), and a killed
job resumes without redoing its finished shards nor trusting broken ones."""

import hashlib
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from conftest import REPO
from sampling_job import (
    BATCH_SIZE,
    CLASS_NAMES,
    KNOB_VALUE,
    LABELS_N,
    PROVENANCE,
    SEED,
    SHARD_SIZE,
    ClassColouredNoise,
    open_noise,
    sample,
)

from distgan.data.manifest import manifest_digest, read_manifest
from distgan.data.shards import read_shards
from distgan.data.verify import VERIFIED_NAME
from distgan.data.writer import encode_image
from distgan.errors import DataError, GeneratorError
from distgan.generators.sampling import _encoding_pool, record_path, sample_to_shards, shard_seed, work_dir_of
from distgan.runtime.hashing import sha256_of

JOB = REPO / "tests" / "sampling_job.py"
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
NUM_SHARDS = 5  # 300 labels in shards of 64


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The set one uninterrupted worker writes."""
    out = tmp_path_factory.mktemp("one") / "set"
    sample(out, open_noise())
    return out


def file_ids(directory, names) -> dict:
    """(inode, mtime) of files: a file renamed over, or written again, gets another."""
    return {name: (os.stat(directory / name).st_ino, os.stat(directory / name).st_mtime_ns) for name in names}


def shard_names(indices) -> list[str]:
    return [f"shard-{k:06d}.tar" for k in indices]


def assert_same_set(out, reference) -> None:
    assert manifest_digest(out) == manifest_digest(reference)
    # No records, temporary files or strays left (a set's first reader adds its verification record).
    assert sorted(set(os.listdir(out)) - {VERIFIED_NAME}) == sorted(set(os.listdir(reference)) - {VERIFIED_NAME})
    for shard in read_manifest(out)["shards"]:
        assert sha256_of(out / shard["name"]) == sha256_of(reference / shard["name"]) == shard["sha256"]


def expected_images() -> np.ndarray:
    """What the generator makes for LABELS_N: shard k's batches drawn in order from a generator seeded shard_seed(k)."""
    gen, expected = ClassColouredNoise(), []
    for k in range(NUM_SHARDS):
        rng = torch.Generator().manual_seed(shard_seed(SEED, k))
        shard_labels = torch.from_numpy(LABELS_N[k * SHARD_SIZE : (k + 1) * SHARD_SIZE])
        expected += [gen.sample(batch, KNOB_VALUE, rng) for batch in shard_labels.split(BATCH_SIZE)]
    return torch.cat(expected).numpy()


def png_members(out) -> list[bytes]:
    """The encoded images of a set, in key order, as the tars hold them."""
    found = []
    for shard in read_manifest(out)["shards"]:
        with tarfile.open(out / shard["name"]) as tar:
            found += [tar.extractfile(member).read() for member in tar if member.name.endswith(".png")]
    return found


def test_set_is_one_image_per_label_from_per_shard_generators(reference):
    written = read_shards(reference)
    assert np.array_equal(written.labels_N, LABELS_N)
    assert np.array_equal(written.images_NHWC, expected_images())
    manifest = read_manifest(reference)
    assert [s["num_samples"] for s in manifest["shards"]] == [64, 64, 64, 64, 44]
    assert manifest["class_counts"] == np.bincount(LABELS_N).tolist()
    sampling = manifest["provenance"]["sampling"]
    assert sampling["generator"]["kind"] == "python" and sampling["generator"]["sha256"] == sha256_of(JOB)
    settings = {"seed": SEED, "knob": "truncation", "knob_value": KNOB_VALUE, "shard_size": SHARD_SIZE}
    assert {key: sampling[key] for key in (*settings, "batch_size")} == settings | {"batch_size": BATCH_SIZE}
    assert sampling["labels_sha256"] == hashlib.sha256(LABELS_N.astype("<i8").tobytes()).hexdigest()
    assert sampling["precision"] is None  # a generator that does not declare its arithmetic
    assert manifest["provenance"]["kind"] == "synthetic"
    assert not work_dir_of(reference).exists()


def test_two_workers_write_the_same_set_as_one(reference, tmp_path):
    out = tmp_path / "set"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        str(JOB),
        str(out),
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ENV, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]
    assert_same_set(out, reference)
    assert np.array_equal(read_shards(out).images_NHWC, read_shards(reference).images_NHWC)
    for rank in (0, 1):  # rank r sampled shards r, r + 2, ...
        seeds = json.loads((tmp_path / f"rank{rank}.json").read_text())["seeds"]
        assert seeds == [shard_seed(SEED, k) for k in range(rank, NUM_SHARDS, 2)]


def test_killed_job_resumes_without_redoing_finished_shards(reference, tmp_path):
    out = tmp_path / "set"
    with pytest.raises(GeneratorError, match="failed on call 7"):  # the first batch of shard 2
        sample(out, open_noise(fail_on_call=7))
    assert not out.exists()  # a reader sees nothing yet
    work = work_dir_of(out)
    assert [record_path(work, k).is_file() for k in range(3)] == [True, True, False]
    finished = file_ids(work, shard_names([0, 1]))

    resumed = open_noise()
    sample(out, resumed)
    assert resumed.generator.seeds == [shard_seed(SEED, k) for k in (2, 3, 4)]
    assert resumed.generator.num_calls == 3 + 3 + 2
    assert file_ids(out, shard_names([0, 1])) == finished
    assert_same_set(out, reference)

    again = open_noise()
    assert sample(out, again) == read_manifest(out) and again.generator.num_calls == 0  # complete: returned as it is


def test_corrupt_and_half_written_shards_are_sampled_again(reference, tmp_path):
    out = tmp_path / "set"
    with pytest.raises(GeneratorError, match="failed on call 10"):  # shards 0, 1, 2 finished
        sample(out, open_noise(fail_on_call=10))
    work = work_dir_of(out)
    corrupt = bytearray((work / "shard-000000.tar").read_bytes())
    corrupt[700] ^= 0xFF
    (work / "shard-000000.tar").write_bytes(bytes(corrupt))
    record_path(work, 1).unlink()  # killed between the tar and its record
    (work / ".shard-000003.tar.tmp-host-1-0123abcd.tar").write_bytes(b"half a tar")  # a killed writer's file
    kept = file_ids(work, shard_names([2]))

    resumed = open_noise()
    sample(out, resumed)
    assert resumed.generator.seeds == [shard_seed(SEED, k) for k in (0, 1, 3, 4)]
    assert file_ids(out, shard_names([2])) == kept
    assert_same_set(out, reference)


def test_shards_of_other_settings_are_not_reused(reference, tmp_path):
    out = tmp_path / "set"
    with pytest.raises(GeneratorError):  # shard 0 finished at another knob value
        sample(out, open_noise(fail_on_call=4), knob_value=0.9)
    resumed = open_noise()
    sample(out, resumed)
    assert resumed.generator.seeds == [shard_seed(SEED, k) for k in range(NUM_SHARDS)]
    assert_same_set(out, reference)
    with pytest.raises(DataError, match="other settings"):
        sample(reference, open_noise(), knob_value=0.9)


def test_encoding_processes_are_not_forked_from_the_sampler():
    """A fork of the sampler, whose CUDA, NCCL and Ray threads may hold locks, can deadlock: the encoders' parent is a
    fork server, never this process."""
    with _encoding_pool(3) as pool:
        parents = {future.result() for future in [pool.submit(os.getppid) for _ in range(12)]}
    assert os.getpid() not in parents


def test_set_is_byte_identical_to_a_single_process_encode(reference, tmp_path):
    """Whatever the number of encoding processes, each PNG is the bytes this process's PIL makes of the image."""
    out = tmp_path / "set"
    sample_to_shards(open_noise(), LABELS_N, CLASS_NAMES, KNOB_VALUE, seed=SEED, out_dir=out, shard_size=SHARD_SIZE,
                     provenance=PROVENANCE, batch_size=BATCH_SIZE, encode_workers=3)  # fmt: skip
    assert png_members(out) == [encode_image(image, "png", 0) for image in expected_images()]
    assert_same_set(out, reference)
