"""Data pipeline: shard writer (formats, limits, parallel, index files, webdataset's TarWriter), distributed
order (webdataset's worker split), loaders (DALI vs the webdataset+PIL fallback), mixtures, bad data,
image-folder sharding."""

import hashlib
import importlib.util
import io
import itertools
import json
import tarfile

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from distgan.data.imagefolder import write_image_folder_shards
from distgan.data.loader import PilLoader, ShardSamples, make_loader
from distgan.data.manifest import read_manifest
from distgan.data.mixtures import class_quotas, write_mixture
from distgan.data.order import rank_indices
from distgan.data.shards import BadSamples, read_shards, write_shards
from distgan.data.sources import ImageSplit
from distgan.data.tarindex import tar_index_lines, write_index
from distgan.data.writer import ShardOptions, write_array_shards
from distgan.errors import ConfigError, DataError

HAVE_DALI = importlib.util.find_spec("nvidia.dali") is not None
needs_dali = pytest.mark.skipif(not HAVE_DALI, reason="NVIDIA DALI not installed (pip install .[dali])")


def random_split(num: int, size: int = 8, channels: int = 3, num_classes: int = 3, seed: int = 0) -> ImageSplit:
    rng = np.random.default_rng(seed)
    return ImageSplit(
        images_NHWC=rng.integers(0, 256, (num, size, size, channels), dtype=np.uint8),
        labels_N=rng.integers(0, num_classes, num).astype(np.int64),
        class_names=tuple("abcdefghij"[:num_classes]),
    )


@pytest.fixture(scope="module")
def split():
    return random_split(203)


@pytest.fixture(scope="module")
def png_dir(tmp_path_factory, split):
    out = tmp_path_factory.mktemp("png") / "shards"
    write_shards(split, out, max_samples_per_shard=50, provenance={"kind": "real"})
    return out


def epoch_batches(loader, epoch=0):
    return list(loader.epoch(epoch))


# Writer.


def test_parallel_writing_is_byte_identical_and_index_matches_wds2idx(tmp_path, split, png_dir):
    options = ShardOptions(max_samples_per_shard=50, num_workers=2, chunk_size=16)
    manifest = write_array_shards(split, tmp_path / "par", options=options, provenance={"kind": "real"})
    assert manifest == read_manifest(png_dir)  # same shards, digests and keys with 2 encoding processes
    assert [s["num_samples"] for s in manifest["shards"]] == [50, 50, 50, 50, 3]
    pytest.importorskip("wds2idx", reason="DALI's wds2idx tool not installed")
    from wds2idx import IndexCreator

    shard = png_dir / "shard-000001.tar"
    with IndexCreator(str(shard), str(tmp_path / "ref.idx"), verbose=False) as creator:
        creator.create_index()
    assert (tmp_path / "ref.idx").read_text() == (png_dir / "shard-000001.idx").read_text()
    assert tar_index_lines(shard)[1].split()[::4] == ["png", "cls", "lbl"]


def test_int32_label_entry_and_stable_keys(png_dir, split):
    with tarfile.open(png_dir / "shard-000000.tar") as tar:
        names = tar.getnames()[:3]
        lbl = tar.extractfile("00000000.lbl").read()
    assert names == ["00000000.png", "00000000.cls", "00000000.lbl"]
    assert np.frombuffer(lbl, "<i4").tolist() == [split.labels_N[0]]


def test_tarwriter_shards_equal_the_plain_tarfile_ones(png_dir):
    # webdataset's TarWriter writes the shards; the same members written by tarfile with the header fields
    # of the writer before it (mtime 0, mode 0444, no owner) give the same bytes, so digests did not change.
    shard = png_dir / "shard-000001.tar"
    buffer = io.BytesIO()
    with tarfile.open(shard) as src, tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as out:
        for member in src:
            info = tarfile.TarInfo(member.name)
            info.size, info.mtime, info.mode, info.uname, info.gname = member.size, 0, 0o444, "", ""
            out.addfile(info, src.extractfile(member))
    assert buffer.getvalue() == shard.read_bytes()


def test_jpeg_and_byte_limit(tmp_path, split):
    options = ShardOptions(image_format="jpeg", jpeg_quality=90, max_samples_per_shard=1000, max_bytes_per_shard=40_000)
    manifest = write_array_shards(split, tmp_path / "jpg", options=options, provenance={})
    assert manifest["image_format"] == "jpeg" and manifest["jpeg_quality"] == 90
    assert len(manifest["shards"]) > 1 and all(s["num_bytes"] <= 40_000 + 10_240 for s in manifest["shards"])
    back = read_shards(tmp_path / "jpg")  # the tar end-of-archive blocks (10 KiB record) come on top of the limit
    assert np.array_equal(back.labels_N, split.labels_N)
    expected = np.stack([np.asarray(Image.open(io.BytesIO(_jpeg(im, 90)))) for im in split.images_NHWC])
    assert np.array_equal(back.images_NHWC, expected)
    with pytest.raises(ConfigError, match="jpeg-quality"):
        ShardOptions(jpeg_quality=0)


def _jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


# Deterministic distributed order.


def test_two_ranks_two_workers_see_each_sample_exactly_once(png_dir):
    keys = []
    for rank in range(2):
        loader = make_loader(
            png_dir,
            batch_size=16,
            train=True,
            padding=2,
            flip=True,
            num_workers=2,
            rank=rank,
            world_size=2,
            seed=3,
            last="drop",
            backend="pil",
        )
        keys += [i for batch in epoch_batches(loader, epoch=1) for i in batch["indices"].tolist()]
    # 203 samples, 2 ranks, drop: one sample (the epoch order's last) is not seen, none twice.
    assert len(keys) == len(set(keys)) == 202
    padded = np.concatenate([rank_indices(203, epoch=1, seed=3, rank=r, world_size=2, last="pad") for r in range(2)])
    assert set(padded.tolist()) == set(range(203)) and len(padded) == 204


def test_webdataset_splits_the_batches_between_workers(png_dir, monkeypatch):
    # The fallback is a webdataset pipeline: wds.split_by_worker hands worker w of W the batches w, w + W, ...
    # of its rank's order (it reads the worker from WORKER / NUM_WORKERS here, from torch in a DataLoader).
    seen = {}
    for rank in range(2):
        samples = ShardSamples(
            png_dir, shards=read_manifest(png_dir)["shards"], train=True, image_size=None, padding=2, flip=True,
            batch_size=16, rank=rank, world_size=2, seed=3, last="drop", shuffle=True,
        )  # fmt: skip
        assert isinstance(samples, wds.DataPipeline) and wds.split_by_worker in samples.pipeline
        samples.position.copy_(torch.tensor([1, 0]))  # epoch 1 from its first batch
        for worker in range(2):
            monkeypatch.setenv("WORKER", str(worker))
            monkeypatch.setenv("NUM_WORKERS", "2")
            seen[rank, worker] = [batch["indices"] for batch in samples]
        assert [len(seen[rank, w]) for w in range(2)] == [4, 3]  # 101 samples: 7 batches of 16 (the last of 5)
        # Asked round robin, as a DataLoader asks its workers, they give the rank's exact order.
        batches = [b for pair in itertools.zip_longest(seen[rank, 0], seen[rank, 1]) for b in pair if b is not None]
        expected = rank_indices(203, epoch=1, seed=3, rank=rank, world_size=2, last="drop")
        assert torch.cat(batches).tolist() == expected.tolist()
    # 2 ranks × 2 workers: each sample once in the epoch (drop: the order's last one not at all).
    indices = torch.cat([b for batches in seen.values() for b in batches]).tolist()
    assert len(indices) == len(set(indices)) == 202


def test_order_is_the_same_each_time_and_changes_per_epoch():
    first = rank_indices(97, epoch=4, seed=7, rank=0, world_size=1)
    assert np.array_equal(first, rank_indices(97, epoch=4, seed=7, rank=0, world_size=1))
    assert sorted(first.tolist()) == list(range(97))
    assert not np.array_equal(rank_indices(97, epoch=5, seed=7, rank=0, world_size=1), first)


# DALI and the fallback.


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_fallback_pixels_equal_pil_and_dali(tmp_path, split, png_dir, image_format):
    shard_dir = png_dir
    if image_format == "jpeg":
        shard_dir = tmp_path / "jpeg"
        options = ShardOptions(image_format="jpeg", jpeg_quality=90, max_samples_per_shard=50)
        write_array_shards(split, shard_dir, options=options, provenance={})
    reference = read_shards(shard_dir)  # PIL's decode of the members webdataset's tar iterator reads
    if image_format == "png":
        assert np.array_equal(reference.images_NHWC, split.images_NHWC)  # lossless: the written images
    batches = {}
    for backend in ["pil"] + (["dali"] if HAVE_DALI else []):
        loader = make_loader(shard_dir, batch_size=32, train=False, num_workers=1, backend=backend)
        assert isinstance(loader, PilLoader) == (backend == "pil")
        got = epoch_batches(loader)
        batches[backend] = images, labels = torch.cat([b["images"] for b in got]), torch.cat([b["labels"] for b in got])
        pixels = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(pixels, reference.images_NHWC) and np.array_equal(labels.numpy(), reference.labels_N)
    if HAVE_DALI:  # DALI normalises as (x − 127.5) / 127.5, the fallback as x / 127.5 − 1: equal to float32 rounding
        torch.testing.assert_close(batches["dali"][0], batches["pil"][0], rtol=0, atol=1e-6)


def _hashes(images):
    pixels = ((images + 1) * 127.5).round().to(torch.uint8)
    return sorted(hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in pixels)


@needs_dali
def test_dali_two_ranks_partition_each_epoch(png_dir, split):
    reference = _hashes(torch.from_numpy(split.images_NHWC).permute(0, 3, 1, 2).float().div(127.5).sub(1.0))
    loaders = [
        make_loader(png_dir, batch_size=16, train=False, shuffle=True, rank=r, world_size=2, seed=1, backend="dali")
        for r in range(2)
    ]
    for epoch in range(2):
        images = [b["images"] for loader in loaders for b in epoch_batches(loader, epoch)]
        assert _hashes(torch.cat(images)) == reference  # every sample once, across both ranks


@needs_dali
def test_dali_training_augmentation_keeps_shape_and_range(png_dir):
    loader = make_loader(png_dir, batch_size=32, train=True, padding=2, flip=True, backend="dali", num_workers=1)
    images = torch.cat([b["images"] for b in epoch_batches(loader)])
    assert images.shape == (203, 3, 8, 8) and images.min() >= -1 and images.max() <= 1
    assert (images == -1).any()  # padded black borders appear


def test_fallback_says_once_that_dali_is_absent(monkeypatch, caplog, png_dir):
    import builtins

    import distgan.data.loader as loader_module

    real_import = builtins.__import__

    def no_dali(name, *args, **kwargs):
        if name.startswith("nvidia.dali"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dali)
    monkeypatch.setattr(loader_module, "_said_dali_absent", False)
    loaders = [make_loader(png_dir, batch_size=64, train=False, num_workers=0) for _ in range(2)]
    assert all(loader.backend == "pil" for loader in loaders)
    assert sum("DALI is not installed" in r.message for r in caplog.records) == 1


# Mixtures.


def test_class_quotas_follow_histogram_and_sum_exactly():
    quotas = class_quotas([10, 20, 30, 41], 51)
    assert quotas.sum() == 51 and np.all(np.abs(quotas - np.array([10, 20, 30, 41]) * 51 / 101) < 1)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_real_plus_fraction_synthetic(tmp_path, png_dir, split, fraction):
    synthetic = random_split(300, seed=9)
    write_shards(synthetic, tmp_path / "syn", max_samples_per_shard=100, provenance={"kind": "synthetic"})
    manifest = write_mixture(
        tmp_path / "mix", real_dir=png_dir, synthetic_dir=tmp_path / "syn", synthetic_fraction=fraction
    )
    num_syn = round(fraction * 203)
    assert manifest["num_samples"] == 203 + num_syn
    real_counts = np.bincount(split.labels_N, minlength=3)
    syn_counts = np.array(manifest["provenance"]["components"][1]["class_counts"])
    assert syn_counts.sum() == num_syn and np.array_equal(syn_counts, class_quotas(real_counts.tolist(), num_syn))
    assert manifest["class_counts"] == (real_counts + syn_counts).tolist()
    mixed = read_shards(tmp_path / "mix")
    real_rows = {im.tobytes() for im in split.images_NHWC}
    assert sum(im.tobytes() in real_rows for im in mixed.images_NHWC) == 203  # every real image, bytes copied


def test_synthetic_only_and_refusals(tmp_path, png_dir):
    manifest = write_mixture(tmp_path / "only", real_dir=None, synthetic_dir=png_dir)
    assert manifest["num_samples"] == 203 and manifest["provenance"]["components"][0]["role"] == "synthetic"
    with pytest.raises(ConfigError, match="synthetic-fraction"):
        write_mixture(tmp_path / "x", real_dir=png_dir, synthetic_dir=png_dir, synthetic_fraction=0)
    with pytest.raises(DataError, match="class 0 has"):  # 203 synthetic cannot supply 2 × 203
        write_mixture(tmp_path / "y", real_dir=png_dir, synthetic_dir=png_dir, synthetic_fraction=2.0)


# Bad data.


def _rewrite_member(shard, name, data):
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, content in members:
            if member.name == name:
                content = data
                if data is None:
                    continue
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    write_index(shard)  # offsets moved: a damaged sample, not a stale index, is what is tested


@pytest.fixture
def damaged(tmp_path, split):
    out = tmp_path / "bad"
    write_shards(split, out, max_samples_per_shard=50, provenance={})
    _rewrite_member(out / "shard-000001.tar", "00000060.png", b"not a png")
    _rewrite_member(out / "shard-000002.tar", "00000120.cls", None)
    return out


def test_bad_samples_error_by_default_and_skip_counts(damaged):
    with pytest.raises(DataError, match=r"shard-000001\.tar key 00000060: PNG cannot be decoded"):
        read_shards(damaged, verify=False)
    bad = BadSamples("skip")
    back = read_shards(damaged, verify=False, bad=bad)
    assert bad.num_skipped == 2 and len(back.labels_N) == 201
    assert "missing cls" in bad.reasons[1] and "00000120" in bad.reasons[1]
    bad = BadSamples("skip")  # with digest checks, both changed shards are refused whole and counted
    assert len(read_shards(damaged, bad=bad).labels_N) == 103 and bad.num_skipped == 100
    assert bad.as_dict()["num_skipped_samples"] == 100


def test_loader_bad_sample_error_and_skip(damaged):
    with pytest.raises(DataError, match=r"key 00000060"):
        epoch_batches(make_loader(damaged, batch_size=64, train=False, num_workers=0, backend="pil", verify=False))
    bad = BadSamples("skip")
    loader = make_loader(damaged, batch_size=64, train=False, num_workers=2, backend="pil", bad=bad, verify=False)
    assert sum(len(b["labels"]) for b in epoch_batches(loader)) == 201 and bad.num_skipped == 2
    assert any("00000120: missing cls" in reason for reason in bad.reasons)


def test_truncated_tar_skip_counts_the_rest(tmp_path, split):
    write_shards(split, tmp_path / "t", max_samples_per_shard=50, provenance={})
    shard = tmp_path / "t" / "shard-000003.tar"
    shard.write_bytes(shard.read_bytes()[:20_000])
    bad = BadSamples("skip")
    back = read_shards(tmp_path / "t", verify=False, bad=bad)
    assert len(back.labels_N) + bad.num_skipped == 203 and "shard-000003.tar: unreadable tar" in bad.reasons[0]


def test_member_escaping_the_shard_is_refused(tmp_path, png_dir):
    bad_dir = tmp_path / "escape"
    bad_dir.mkdir()
    (bad_dir / "manifest.json").write_text(
        json.dumps(read_manifest(png_dir) | {"shards": [read_manifest(png_dir)["shards"][0]]})
    )
    with tarfile.open(bad_dir / "shard-000000.tar", "w") as tar:
        info = tarfile.TarInfo("../../etc/00000000.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(DataError, match=r"escapes the shard"):
        read_shards(bad_dir, verify=False)
    with pytest.raises(ConfigError, match="on-bad-sample"):
        BadSamples("ignore")


# Image folders (the ImageNet layout).


def test_image_folder_jpegs_pass_through_or_resize(tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    for split_name in ("train", "test"):
        for class_name in ("n01", "n02"):
            (tmp_path / "tree" / split_name / class_name).mkdir(parents=True)
            for i in range(3):
                file = tmp_path / "tree" / split_name / class_name / f"img{i}.JPEG"
                size = (20 + i, 16 + 2 * i)  # ImageNet images differ in size
                Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(file, quality=80)
                files[(split_name, class_name, i)] = file.read_bytes()
    options = ShardOptions(image_format="jpeg", num_workers=2, chunk_size=2, max_samples_per_shard=4)
    manifest = write_image_folder_shards(
        tmp_path / "tree", "train", tmp_path / "raw", options=options, image_size=None, provenance={}
    )
    assert manifest["image_shape_HWC"] is None and manifest["class_counts"] == [3, 3]
    with tarfile.open(tmp_path / "raw" / "shard-000001.tar") as tar:
        assert tar.extractfile("00000004.jpg").read() == files[("train", "n02", 1)]  # byte for byte
    loader = make_loader(tmp_path / "raw", batch_size=6, train=False, image_size=12, num_workers=0, backend="pil")
    (batch,) = epoch_batches(loader)
    assert batch["images"].shape == (6, 3, 12, 12) and batch["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DataError, match="training crops need one image size"):
        make_loader(tmp_path / "raw", batch_size=6, train=True, num_workers=0, backend="pil")
    resized = write_image_folder_shards(
        tmp_path / "tree", "test", tmp_path / "small", options=ShardOptions(), image_size=8, provenance={}
    )
    assert resized["image_shape_HWC"] == [8, 8, 3] and read_shards(tmp_path / "small").images_NHWC.shape == (6, 8, 8, 3)


@pytest.mark.parametrize("backend", ["pil", pytest.param("dali", marks=needs_dali)])
def test_loaders_check_digests_once(tmp_path, split, backend):
    write_shards(split, tmp_path / "d", max_samples_per_shard=50, provenance={})
    shard = tmp_path / "d" / "shard-000002.tar"
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF  # inside the first image: the tar still reads, only the digest tells
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"shard-000002\.tar: sha256 differs"):
        make_loader(tmp_path / "d", batch_size=64, train=False, num_workers=0, backend=backend)
    bad = BadSamples("skip")
    loader = make_loader(tmp_path / "d", batch_size=64, train=False, num_workers=1, backend=backend, bad=bad)
    assert sum(len(b["labels"]) for b in epoch_batches(loader)) == 153 and bad.num_skipped == 50
