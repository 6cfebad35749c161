"""The data path at ImageNet scale (issue 24): shards shuffled across classes, digests verified once, the overlap check
once per pair, JPEG as a sweep's choice, a GAN rank reading only its share, labels without reading the samples."""

import builtins
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distgan.config import ClassifierConfig, DataConfig
from distgan.data import overlap
from distgan.data import shards as shards_module
from distgan.data.imagefolder import write_image_folder_shards
from distgan.data.loader import make_loader
from distgan.data.manifest import read_manifest, shuffled_order
from distgan.data.selection import ShardSelection
from distgan.data.shards import iterate_tar, read_labels, read_shards, write_shards
from distgan.data.sources import ImageSplit, load_split
from distgan.data.verify import VERIFIED_NAME
from distgan.data.writer import ShardOptions, real_shard_options
from distgan.errors import ConfigError, DataError
from distgan.recipes import ravuri_vinyals_imagenet
from distgan.runtime.hashing import bytes_hashed
from distgan.train.batches import evaluation_batches, loader_workers, open_split

NUM_CLASSES, PER_CLASS = 10, 24


@pytest.fixture(scope="module")
def class_sorted_shards(tmp_path_factory):
    """A class-sorted 10-class image folder (PNG and JPEG files), prepared as `distgan prepare` does (seed 0)."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for c in range(NUM_CLASSES):
        (root / "train" / f"n{c:02d}").mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = np.clip(rng.normal(25 * c, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
            suffix = "png" if i % 2 else "jpg"
            Image.fromarray(pixels).save(root / "train" / f"n{c:02d}" / f"{i:03d}.{suffix}")
    out = tmp_path_factory.mktemp("shards") / "train"
    options = ShardOptions(max_samples_per_shard=40, shuffle_seed=0)
    write_image_folder_shards(root, "train", out, options=options, image_size=12, provenance={"kind": "real"})
    return out


@pytest.mark.parametrize("backend", ["dali", "pil"])
def test_every_rank_first_batch_spans_classes(class_sorted_shards, backend):
    for rank in range(2):
        loader = make_loader(
            class_sorted_shards, batch_size=32, train=True, padding=2, flip=True, num_workers=1 if backend == "dali"
            else 0, rank=rank, world_size=2, seed=0, backend=backend,
        )  # fmt: skip
        labels = next(iter(loader.epoch(0)))["labels"]
        assert len(set(labels.tolist())) >= 8, (backend, rank, labels.tolist())


def test_shuffled_order_is_recorded_and_keys_name_the_source_index(class_sorted_shards):
    manifest = read_manifest(class_sorted_shards)
    assert manifest["order"]["shuffle_seed"] == 0 and "permutation" in manifest["order"]["rule"]
    keys = [key for shard in manifest["shards"] for key, _ in iterate_tar(class_sorted_shards / shard["name"])]
    order = shuffled_order(NUM_CLASSES * PER_CLASS, 0)
    assert [int(key) for key in keys] == order.tolist()
    assert read_labels(class_sorted_shards).tolist() == (order // PER_CLASS).tolist()  # sorted listing: class-major


@pytest.fixture
def digits_dir(tmp_path):
    split = load_split("digits", "train", image_size=8)
    out = tmp_path / "digits"
    write_shards(split, out, max_samples_per_shard=300, provenance={"kind": "real"})
    return out


def _shard_bytes_hashed() -> int:
    return bytes_hashed[".tar"] + bytes_hashed[".idx"]


def _classifier_loaders(shard_dir: Path) -> None:
    """What a classifier job's data path does with a split: open it, read a training batch and evaluate it."""
    cfg = ClassifierConfig(loader="stream", loader_backend="pil", loader_workers=0)
    source = open_split(shard_dir, cfg)
    loader = make_loader(source.shard_dir, batch_size=64, train=True, num_workers=0, backend="pil")
    next(iter(loader.epoch(0)))
    assert sum(len(labels) for _, labels in evaluation_batches(source, 256)) == 1437


def test_a_classifier_job_hashes_no_shard_byte_after_the_first_verification(digits_dir):
    bytes_hashed.clear()
    _classifier_loaders(digits_dir)  # published by the writer: its digests are recorded
    assert _shard_bytes_hashed() == 0
    (digits_dir / VERIFIED_NAME).unlink()  # a set never verified (e.g. written before the record existed) ...
    _classifier_loaders(digits_dir)
    manifest = read_manifest(digits_dir)
    all_bytes = sum(s["num_bytes"] + (digits_dir / s["index"]).stat().st_size for s in manifest["shards"])
    assert _shard_bytes_hashed() == all_bytes  # ... is hashed once, on first use
    bytes_hashed.clear()
    _classifier_loaders(digits_dir)
    read_shards(digits_dir)
    assert _shard_bytes_hashed() == 0


def _flip_byte(path: Path, offset: int, *, keep_stat: bool = False) -> None:
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    if keep_stat:  # bytes changed in place behind the record's back: same size, same mtime
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_corrupt_shard_is_caught_at_first_use(digits_dir):
    (digits_dir / VERIFIED_NAME).unlink()
    _flip_byte(digits_dir / "shard-000001.tar", 5000)
    with pytest.raises(DataError, match=r"shard-000001\.tar: sha256 differs"):
        make_loader(digits_dir, batch_size=8, train=False, backend="pil", num_workers=0)


def test_a_shard_changed_after_verification_is_hashed_again_and_caught(digits_dir):
    bytes_hashed.clear()
    _flip_byte(digits_dir / "shard-000002.tar", 5000)
    with pytest.raises(DataError, match=r"shard-000002\.tar: sha256 differs"):
        make_loader(digits_dir, batch_size=8, train=False, backend="dali", num_workers=1)
    assert _shard_bytes_hashed() == (digits_dir / "shard-000002.tar").stat().st_size  # that shard only


def test_bytes_changed_behind_the_record_fail_decoding_naming_shard_and_key(digits_dir):
    shard = read_manifest(digits_dir)["shards"][0]
    key, members = shards_module.read_index(digits_dir, shard)[3]
    offset, size = members["png"]
    path = digits_dir / shard["name"]
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset : offset + size] = bytes(size)  # the whole PNG zeroed, size and mtime kept
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    loader = make_loader(digits_dir, batch_size=2000, train=False, backend="pil", num_workers=0)
    with pytest.raises(DataError, match=rf"shard-000000\.tar key {key}: PNG cannot be decoded"):
        list(loader.epoch(0))


def test_overlap_check_runs_once_per_pair_of_sets(tmp_path, monkeypatch):
    split = load_split("digits", "train", image_size=8)
    half = len(split.labels_N) // 2
    parts = {
        name: ImageSplit(images_NHWC=split.images_NHWC[sl], labels_N=split.labels_N[sl], class_names=split.class_names)
        for name, sl in (("train", slice(0, half)), ("test", slice(half, None)), ("leak", slice(half - 5, None)))
    }
    for name, part in parts.items():
        write_shards(part, tmp_path / name, max_samples_per_shard=200, provenance={"kind": "real"})
    reads = []
    real_iterate = overlap.iterate_tar
    monkeypatch.setattr(overlap, "iterate_tar", lambda path: reads.append(path) or real_iterate(path))
    overlap.refuse_shared_images(tmp_path / "train", tmp_path / "test")
    assert len(reads) == 8  # 4 + 4 shards, once
    overlap.refuse_shared_images(tmp_path / "train", tmp_path / "test")
    assert len(reads) == 8  # recorded beside the test manifest: not read again
    for _ in range(2):
        with pytest.raises(DataError, match=r"share 5 image"):
            overlap.refuse_shared_images(tmp_path / "train", tmp_path / "leak")
    assert len(reads) == 8 + 8  # the refusal is recorded too


class _CountingOpen:
    """builtins.open that counts the bytes read from each shard tar (what a rank reads of the set)."""

    def __init__(self):
        self.bytes_read: dict[str, int] = {}

    def __call__(self, file, mode="r", *args, **kwargs):
        handle = builtins.open(file, mode, *args, **kwargs)
        if str(file).endswith(".tar"):
            counts, name, read = self.bytes_read, Path(file).name, handle.read

            def counted(*a):
                data = read(*a)
                counts[name] = counts.get(name, 0) + len(data)
                return data

            handle.read = counted
        return handle


def test_a_gan_rank_reads_only_its_share_and_labels_need_no_sample_read(tmp_path, monkeypatch):
    split = load_split("digits", "train", image_size=8)
    out = tmp_path / "real"
    write_shards(
        split, out, max_samples_per_shard=200, provenance={"kind": "real"}, options=ShardOptions(shuffle_seed=0)
    )
    whole = read_shards(out)
    total = sum(shard["num_bytes"] for shard in read_manifest(out)["shards"])
    counting = _CountingOpen()
    monkeypatch.setattr(shards_module, "open", counting, raising=False)
    parts = []
    for rank in range(2):
        counting.bytes_read.clear()
        parts.append(read_shards(out, rank=rank, world_size=2))
        assert 0 < sum(counting.bytes_read.values()) < 0.55 * total, (rank, counting.bytes_read)
    assert np.array_equal(np.concatenate([p.images_NHWC for p in parts]), whole.images_NHWC)
    assert np.array_equal(np.concatenate([p.labels_N for p in parts]), whole.labels_N)
    assert len(set(parts[0].labels_N.tolist())) == 10  # a shuffled set: each rank's share holds every class
    counting.bytes_read.clear()
    assert np.array_equal(read_labels(out), whole.labels_N)  # from labels.npy: no tar opened
    assert np.array_equal(
        ShardSelection(out, num_images=100).labels_N, whole.labels_N[np.round(np.linspace(0, 1436, 100)).astype(int)]
    )
    assert counting.bytes_read == {}


def test_labels_of_a_set_without_labels_file_come_from_its_lbl_members(tmp_path):
    split = load_split("digits", "train", image_size=8)
    out = tmp_path / "real"
    write_shards(split, out, max_samples_per_shard=500, provenance={})
    manifest_path = out / "manifest.json"
    manifest = read_manifest(out)
    del manifest["labels"]  # as the sampler's sets and sets written before the labels file
    manifest_path.write_text(__import__("json").dumps(manifest))
    assert np.array_equal(read_labels(out), split.labels_N)


def test_sweep_data_fields_jpeg_recipe_and_loader_workers():
    options = real_shard_options(DataConfig(image_format="jpeg", jpeg_quality=90, shuffle_seed=3), num_workers=4)
    assert (options.image_format, options.jpeg_quality, options.shuffle_seed, options.num_workers) == ("jpeg", 90, 3, 4)
    assert ravuri_vinyals_imagenet().data.image_format == "jpeg"
    assert real_shard_options(DataConfig()).shuffle_seed == 0 and DataConfig().image_format == "png"
    with pytest.raises(ConfigError, match=r"--data\.image-format must be 'png' or 'jpeg' \(got 'webp'\)"):
        DataConfig(image_format="webp")
    with pytest.raises(ConfigError, match=r"--data\.jpeg-quality must be in \[1, 100\] \(got 0\)"):
        DataConfig(jpeg_quality=0)
    with pytest.raises(ConfigError, match=r"--classifier\.loader-workers"):
        ClassifierConfig(loader_workers=-1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # what train.launch sets from --cpus-per-worker 3
        assert loader_workers(ClassifierConfig()) == 3
        assert loader_workers(ClassifierConfig(loader_workers=5)) == 5
    finally:
        torch.set_num_threads(threads)


def test_png_vs_jpeg_benchmark_quick():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_png_vs_jpeg.py"
    run = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    ratio = float(next(line for line in run.stdout.splitlines() if line.startswith("shard bytes")).split()[-1][:-1])
    assert 0 < ratio < 1  # JPEG shards are smaller
