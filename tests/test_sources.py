"""Dataset readers against real files: shared Fashion-MNIST / CIFAR-10 arrays rewritten in each official format."""

import gzip
import io
import pickle
import re
import struct
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from distgan.config import DataConfig, SweepConfig
from distgan.data.download import download, extract_tar
from distgan.data.manifest import read_manifest, shuffled_order
from distgan.data.shards import read_shards
from distgan.data.sources import (
    CIFAR10_CLASS_NAMES,
    FASHION_MNIST_CLASS_NAMES,
    FASHION_MNIST_DEBIAN_DIR,
    SOURCES,
    load_split,
    register,
)
from distgan.errors import ConfigError, DataError
from distgan.experiments.artifacts import prepare_real_shards
from distgan.runtime.hashing import sha256_of

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FASHION = SHARED_DATA / "fashion_mnist"
CIFAR = SHARED_DATA / "cifar10_lossless_subset"


def _shared(prefix: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    file = Path(f"{prefix}-{split}.npz")
    if not file.is_file():
        pytest.skip(f"shared test data {file} missing (expected a checkout with shared/ beside the repo)")
    with np.load(file) as npz:
        return npz["x"], npz["y"]


@pytest.fixture(scope="module")
def fashion():
    return {split: _shared(FASHION, split) for split in ("train", "test")}


@pytest.fixture(scope="module")
def cifar():
    return {split: _shared(CIFAR, split) for split in ("train", "test")}


def _pairs(images: np.ndarray, labels_N: np.ndarray) -> Counter:
    return Counter(zip((image.tobytes() for image in images), labels_N.tolist(), strict=True))


def test_digits_split_is_stratified_deterministic_and_disjoint():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert train.images_NHWC.shape == (1437, 8, 8, 1) and test.images_NHWC.shape == (360, 8, 8, 1)
    assert train.images_NHWC.dtype == np.uint8 and train.labels_N.dtype == np.int64
    assert train.images_NHWC.min() == 0 and train.images_NHWC.max() == 255
    assert train.class_names == tuple("0123456789") and train.num_classes == 10
    # Stratified: every class keeps 20 % of its images in test, to within one image.
    train_counts, test_counts = np.bincount(train.labels_N), np.bincount(test.labels_N)
    np.testing.assert_allclose(test_counts, 0.2 * (train_counts + test_counts), atol=1)
    np.testing.assert_array_equal(test_counts, [36, 36, 35, 37, 36, 37, 36, 36, 35, 36])
    again = load_split("digits", "train")
    np.testing.assert_array_equal(again.images_NHWC, train.images_NHWC)
    np.testing.assert_array_equal(again.labels_N, train.labels_N)
    # Disjoint as a multiset: digits holds duplicate images, so count (bytes, label) pairs across both splits.
    digits = load_digits()
    everything = _pairs(np.rint(digits.images * 255 / 16).astype(np.uint8), digits.target)
    assert _pairs(train.images_NHWC, train.labels_N) + _pairs(test.images_NHWC, test.labels_N) == everything
    assert load_split("digits", "test", image_size=32).images_NHWC.shape == (360, 32, 32, 1)


def test_npz_prefix_directory_and_file_forms(fashion, cifar, tmp_path):
    for prefix, arrays, shape in ((FASHION, fashion, (28, 28, 1)), (CIFAR, cifar, (32, 32, 3))):
        for split, num_images in (("train", len(arrays["train"][0])), ("test", len(arrays["test"][0]))):
            loaded = load_split("npz", split, path=prefix)
            assert loaded.images_NHWC.shape == (num_images, *shape)
            assert 0 <= loaded.labels_N.min() and loaded.labels_N.max() < loaded.num_classes == 10
            np.testing.assert_array_equal(loaded.images_NHWC, arrays[split][0])
    assert len(fashion["train"][0]) == 60000 and len(fashion["test"][0]) == 10000
    assert len(cifar["train"][0]) == 4000 and len(cifar["test"][0]) == 1000
    # Directory form with train.npz, (N, H, W) images and named classes.
    x, y = fashion["test"]
    np.savez(tmp_path / "test.npz", x=x[:100, :, :, 0], y=y[:100], class_names=np.array(FASHION_MNIST_CLASS_NAMES))
    loaded = load_split("npz", "test", path=tmp_path)
    np.testing.assert_array_equal(loaded.images_NHWC, x[:100])
    assert loaded.class_names == FASHION_MNIST_CLASS_NAMES


def test_one_npz_file_is_split_stratified_and_disjoint_never_served_as_both(cifar):
    """A single file is one set: 80/20 per class with a fixed seed, recorded; the same file given for both splits
    used to be served whole as train and as test."""
    one_file = Path(f"{CIFAR}-test.npz")
    train, test = (load_split("npz", split, path=one_file) for split in ("train", "test"))
    assert (len(train.labels_N), len(test.labels_N)) == (800, 200)
    assert np.abs(np.bincount(test.labels_N) - np.bincount(cifar["test"][1]) / 5).max() <= 1  # per class
    assert not set(_pairs(train.images_NHWC, train.labels_N)) & set(_pairs(test.images_NHWC, test.labels_N))
    assert _pairs(train.images_NHWC, train.labels_N) + _pairs(test.images_NHWC, test.labels_N) == _pairs(*cifar["test"])
    assert train.split_rule == test.split_rule == {
        "method": "stratified", "test_fraction": 0.2, "seed": 0, "library": "scikit-learn", "from": str(one_file)
    }  # fmt: skip
    again = load_split("npz", "test", path=one_file)
    np.testing.assert_array_equal(again.images_NHWC, test.images_NHWC)


def _flat_N3072(x_NHWC: np.ndarray) -> np.ndarray:
    """The official CIFAR-10 row layout: 1024 red, 1024 green, 1024 blue values, each image row-major."""
    return x_NHWC.transpose(0, 3, 1, 2).reshape(len(x_NHWC), 3072)


def test_cifar10_python_batches_round_trip(cifar, tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    x, y = cifar["train"]
    for i in range(5):
        rows = slice(800 * i, 800 * (i + 1))
        batch = {b"data": _flat_N3072(x[rows]), b"labels": y[rows].tolist(), b"batch_label": b"training batch"}
        (root / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch))
    test_x, test_y = cifar["test"]
    (root / "test_batch").write_bytes(pickle.dumps({b"data": _flat_N3072(test_x), b"labels": test_y.tolist()}))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in CIFAR10_CLASS_NAMES]}))
    for path in (root, tmp_path):  # the batches directory or its parent
        train = load_split("cifar10", "train", path=path)
        np.testing.assert_array_equal(train.images_NHWC, x)
        np.testing.assert_array_equal(train.labels_N, y)
        assert train.class_names == CIFAR10_CLASS_NAMES
    test = load_split("cifar10", "test", path=root)
    np.testing.assert_array_equal(test.images_NHWC, test_x)
    np.testing.assert_array_equal(test.labels_N, test_y)
    (root / "test_batch").write_bytes(pickle.dumps({b"data": test_x, b"labels": [0]}))
    with pytest.raises(DataError, match="test_batch"):
        load_split("cifar10", "test", path=root)


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX: two zero bytes, dtype code 0x08 (uint8), ndim, then big-endian uint32 sizes and the raw bytes."""
    return struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape) + array.astype(np.uint8).tobytes()


def test_idx_plain_and_gzip(fashion, tmp_path):
    plain, gzipped = tmp_path / "plain", tmp_path / "gz"
    plain.mkdir(), gzipped.mkdir()
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = fashion[split]
        for kind, array in (("images-idx3", x[..., 0]), ("labels-idx1", y)):
            (plain / f"{prefix}-{kind}-ubyte").write_bytes(_idx_bytes(array))
            (gzipped / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(array), compresslevel=1))
    for source, root in (("mnist", plain), ("fashion_mnist", gzipped)):
        for split in ("train", "test"):
            loaded = load_split(source, split, path=root)
            np.testing.assert_array_equal(loaded.images_NHWC, fashion[split][0])
            np.testing.assert_array_equal(loaded.labels_N, fashion[split][1])
    assert load_split("fashion_mnist", "test", path=gzipped).class_names == FASHION_MNIST_CLASS_NAMES
    assert load_split("mnist", "test", path=plain, image_size=14).images_NHWC.shape == (10000, 14, 14, 1)


def test_fashion_mnist_debian_package_matches_shared(fashion):
    if not (FASHION_MNIST_DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION_MNIST_DEBIAN_DIR} absent; make system-packages (apt-get install dataset-fashion-mnist)")
    for split in ("train", "test"):
        loaded = load_split("fashion_mnist", split)
        np.testing.assert_array_equal(loaded.images_NHWC, fashion[split][0])
        np.testing.assert_array_equal(loaded.labels_N, fashion[split][1])


def _write_pngs(root: Path, x: np.ndarray, y: np.ndarray, class_names) -> None:
    for i, (image_HWC, label) in enumerate(zip(x, y, strict=True)):
        (root / class_names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image_HWC.squeeze(-1) if image_HWC.shape[-1] == 1 else image_HWC).save(
            root / class_names[label] / f"{i:03d}.png"
        )


def test_image_folder_round_trip(cifar, fashion, tmp_path):
    x, y = cifar["train"]
    _write_pngs(tmp_path / "rgb" / "train", x[:50], y[:50], CIFAR10_CLASS_NAMES)
    _write_pngs(tmp_path / "rgb" / "test", x[50:100], y[50:100], CIFAR10_CLASS_NAMES)
    present = sorted({CIFAR10_CLASS_NAMES[label] for label in y[:50]})
    for split, rows in (("train", np.arange(50)), ("test", np.arange(50, 100))):
        # Files come back grouped by sorted class directory, then by file name (= original order).
        order = rows[np.lexsort((rows, [present.index(CIFAR10_CLASS_NAMES[label]) for label in y[rows]]))]
        loaded = load_split("image_folder", split, path=tmp_path / "rgb")
        assert loaded.class_names == tuple(present)
        np.testing.assert_array_equal(loaded.images_NHWC, x[order])
        np.testing.assert_array_equal([present[k] for k in loaded.labels_N], [CIFAR10_CLASS_NAMES[k] for k in y[order]])
    grey_x, grey_y = fashion["test"]
    _write_pngs(tmp_path / "grey" / "train", grey_x[:10], grey_y[:10], FASHION_MNIST_CLASS_NAMES)
    assert load_split("image_folder", "train", path=tmp_path / "grey").images_NHWC.shape == (10, 28, 28, 1)
    Image.fromarray(x[0]).resize((20, 20)).save(tmp_path / "rgb" / "train" / present[0] / "odd.png")
    with pytest.raises(DataError, match="odd.png"):
        load_split("image_folder", "train", path=tmp_path / "rgb")
    assert load_split("image_folder", "train", path=tmp_path / "rgb", image_size=16).images_NHWC.shape == (
        51,
        16,
        16,
        3,
    )


def test_user_errors_name_the_culprit(fashion, tmp_path):
    with pytest.raises(ConfigError) as error:
        load_split("nope", "train")
    assert "'nope'" in str(error.value) and all(name in str(error.value) for name in SOURCES)
    with pytest.raises(ConfigError, match="valid"):
        load_split("digits", "valid")
    with pytest.raises(ConfigError, match="digits"):
        load_split("digits", "train", path=tmp_path)
    missing = tmp_path / "no-such-dir"
    for source in ("cifar10", "mnist", "fashion_mnist", "npz", "image_folder"):
        with pytest.raises(DataError, match=re.escape(str(missing))):
            load_split(source, "train", path=missing)
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_split("fashion_mnist", "train", path=tmp_path)
    x, y = fashion["test"]
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(x[:10, :, :, 0])[:-5])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(y[:10]))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        load_split("mnist", "test", path=tmp_path)
    np.savez(tmp_path / "only-x.npz", x=x[:10])
    with pytest.raises(DataError, match=r"only-x\.npz.*'y'"):
        load_split("npz", "train", path=tmp_path / "only-x.npz")
    np.savez(tmp_path / "floats.npz", x=x[:10].astype(np.float32), y=y[:10])
    with pytest.raises(DataError, match=r"floats\.npz.*'x'"):
        load_split("npz", "train", path=tmp_path / "floats.npz")


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="digits"):
        register("digits")(SOURCES["digits"])


def test_download_and_extract_locally(tmp_path):
    # file:// URLs exercise the streaming, digest and rename logic without any network.
    source = tmp_path / "payload.bin"
    source.write_bytes(b"distgan" * 1000)
    good = sha256_of(source)
    dest = download(source.as_uri(), tmp_path / "out" / "payload.bin", good)
    assert dest.read_bytes() == source.read_bytes()
    with pytest.raises(DataError, match=f"payload.bin.*{good}.*{'0' * 64}"):
        download(source.as_uri(), tmp_path / "out" / "other.bin", "0" * 64)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["payload.bin"]  # no temp left behind
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 3
        tar.addfile(member, io.BytesIO(b"bad"))
    with pytest.raises(DataError, match="escaped"):
        extract_tar(evil, tmp_path / "root")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_sweep_streams_an_image_folder_into_the_shards_the_in_memory_reader_gives(cifar, tmp_path):
    """ImageNet-scale trees are never loaded whole: the sweep's real shards of an image folder come from the
    streaming writer (`distgan prepare image_folder`'s), with the same pixels and labels as `load_split`."""
    x, y = cifar["train"]
    _write_pngs(tmp_path / "tree" / "train", x[:40], y[:40], CIFAR10_CLASS_NAMES)
    _write_pngs(tmp_path / "tree" / "test", x[40:60], y[40:60], CIFAR10_CLASS_NAMES)
    data = DataConfig(source="image_folder", path=tmp_path / "tree", image_size=16)
    real = prepare_real_shards(SweepConfig(results_dir=tmp_path / "results", data=data))
    for split, shard_dir in (("train", real.train_dir), ("test", real.test_dir)):
        streamed, in_memory = read_shards(shard_dir), load_split("image_folder", split, path=data.path, image_size=16)
        manifest = read_manifest(shard_dir)
        assert manifest["provenance"]["image_folder"] == str(data.path)  # the streaming writer's
        seed = manifest["order"]["shuffle_seed"]  # sample i is source sample order[i] (docs/data.md)
        order = np.arange(len(in_memory.labels_N)) if seed is None else shuffled_order(len(in_memory.labels_N), seed)
        np.testing.assert_array_equal(streamed.images_NHWC, in_memory.images_NHWC[order])
        np.testing.assert_array_equal(streamed.labels_N, in_memory.labels_N[order])
        assert streamed.class_names == in_memory.class_names
