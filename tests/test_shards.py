"""WebDataset shards: exact round trip, manifest contents, and clear errors for damaged shards."""

import json

import numpy as np
import pytest

from distgan.data.manifest import MANIFEST_NAME, read_manifest
from distgan.data.order import evenly_spread_indices
from distgan.data.selection import ShardSelection
from distgan.data.shards import read_shards, write_shards
from distgan.data.sources import ImageSplit, load_split
from distgan.errors import DataError
from distgan.runtime.hashing import sha256_of


@pytest.fixture(scope="module")
def digits_train():
    return load_split("digits", "train", image_size=16)


@pytest.fixture
def shard_dir(tmp_path, digits_train):
    out = tmp_path / "real"
    write_shards(digits_train, out, max_samples_per_shard=500, provenance={"kind": "real"})
    return out


def test_round_trip_is_exact_and_manifest_is_complete(shard_dir, digits_train):
    back = read_shards(shard_dir)
    assert np.array_equal(back.images_NHWC, digits_train.images_NHWC)
    assert np.array_equal(back.labels_N, digits_train.labels_N)
    manifest = read_manifest(shard_dir)
    assert manifest["num_samples"] == 1437
    assert [s["num_samples"] for s in manifest["shards"]] == [500, 500, 437]
    assert manifest["class_counts"] == np.bincount(digits_train.labels_N).tolist()
    for shard in manifest["shards"]:
        assert sha256_of(shard_dir / shard["name"]) == shard["sha256"]
    assert not list(shard_dir.parent.glob(".*tmp*"))  # nothing half-written left behind


def test_colour_images_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    split = ImageSplit(
        images_NHWC=rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8),
        labels_N=rng.integers(0, 2, 20).astype(np.int64),
        class_names=("a", "b"),
    )
    write_shards(split, tmp_path / "rgb", max_samples_per_shard=7, provenance={})
    assert np.array_equal(read_shards(tmp_path / "rgb").images_NHWC, split.images_NHWC)


def test_changed_shard_is_named(shard_dir):
    shard = shard_dir / "shard-000001.tar"
    data = bytearray(shard.read_bytes())
    data[5000] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"shard-000001\.tar: sha256 differs"):
        read_shards(shard_dir)


def test_truncated_shard_is_named_even_without_digest_check(shard_dir):
    shard = shard_dir / "shard-000002.tar"
    shard.write_bytes(shard.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"shard-000002\.tar"):
        read_shards(shard_dir, verify=False)


def test_missing_manifest_and_missing_shard(shard_dir, tmp_path):
    with pytest.raises(DataError, match=r"empty.*no shard manifest"):
        read_shards(tmp_path / "empty")
    (shard_dir / "shard-000000.tar").unlink()
    with pytest.raises(DataError, match=r"shard-000000\.tar: shard listed in manifest\.json is missing"):
        read_shards(shard_dir)


def test_count_mismatch_is_named(shard_dir):
    manifest = json.loads((shard_dir / MANIFEST_NAME).read_text())
    manifest["shards"][0]["num_samples"] = 499
    (shard_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"shard-000000\.tar: 500 samples, manifest says 499"):
        read_shards(shard_dir)


def test_a_selection_reads_only_its_samples_and_equals_the_whole_read(shard_dir):
    """The metrics' N images of a large set: read by offset through the index files, chunk by chunk, the same
    pixels and labels as those samples of a whole read; a damaged image is named by shard and key."""
    whole = read_shards(shard_dir)
    selection = ShardSelection(shard_dir, num_images=50)
    index = evenly_spread_indices(len(whole.labels_N), 50)
    assert len(selection) == 50 and index[0] == 0 and index[-1] == len(whole.labels_N) - 1
    np.testing.assert_array_equal(selection.labels_N, whole.labels_N[index])
    np.testing.assert_array_equal(np.concatenate([selection.images(0, 20), selection.images(20, 50)]),
                                  whole.images_NHWC[index])  # fmt: skip
    assert len(ShardSelection(shard_dir)) == len(whole.labels_N)  # 0: all of them
    path, key, entries, _ = selection.samples[3]
    offset, _ = entries["png"]
    with open(path, "r+b") as handle:  # a bit flipped in the PNG signature
        handle.seek(offset)
        handle.write(b"\x00")
    with pytest.raises(DataError, match=f"{path} key {key}: PNG cannot be decoded"):
        selection.images(0, 5)
