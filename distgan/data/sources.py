"""Readers of real labelled image datasets into uint8 NHWC arrays, one registry entry per on-disk format.

`load_split(source, split, path=..., image_size=...)` is the front door; it never downloads (see `download.py`).
"""

import gzip
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from distgan.data.numpy_pickle import read_cifar_pickle
from distgan.errors import ConfigError, DataError
from distgan.runtime.registry import Registry

SPLITS = ("train", "test")
# The stratified 80/20 split of a dataset that ships as one set (digits, a single .npz): its random_state;
# changing it changes every result on such data.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ImageSplit:
    """One split of a labelled image dataset, in memory."""

    images_NHWC: np.ndarray  # uint8, (N, H, W, C), C in {1, 3}
    labels_N: np.ndarray  # int64, (N,), values in [0, num_classes)
    class_names: tuple[str, ...]
    split_rule: dict | None = None  # how this split was cut from one set (`stratified_split`); None: as shipped

    def __post_init__(self):
        # Readers validate user files with DataError; these guard the readers themselves.
        assert self.images_NHWC.dtype == np.uint8 and self.images_NHWC.ndim == 4, self.images_NHWC.shape
        assert self.images_NHWC.shape[3] in (1, 3), self.images_NHWC.shape
        assert self.labels_N.dtype == np.int64 and self.labels_N.shape == self.images_NHWC.shape[:1]
        assert self.labels_N.size == 0 or 0 <= self.labels_N.min() <= self.labels_N.max() < self.num_classes

    @property
    def num_classes(self) -> int:
        """Number of classes, i.e. len(class_names)."""
        return len(self.class_names)


# A reader gets (split, path or None, image_size or None) and returns images already at image_size.
Reader = Callable[[str, Path | None, int | None], ImageSplit]
SOURCES: Registry[Reader] = Registry("data source", "--data.source")
register = SOURCES.register


def load_split(source: str, split: str, *, path: Path | None = None, image_size: int | None = None) -> ImageSplit:
    """Read one split of a registered source; resize to image_size×image_size (bilinear) if given."""
    reader = SOURCES.get_or_raise(source)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {list(SPLITS)} (got {split!r})")
    if image_size is not None and image_size < 1:
        raise ConfigError(f"--data.image_size must be >= 1 (got {image_size})")
    return reader(split, None if path is None else Path(path), image_size)


def resize_NHWC(images_NHWC: np.ndarray, image_size: int | None) -> np.ndarray:
    """Resize uint8 images to image_size×image_size with PIL bilinear; a no-op at None or the native size."""
    if image_size is None or images_NHWC.shape[1:3] == (image_size, image_size):
        return images_NHWC
    num_channels = images_NHWC.shape[3]
    out_NHWC = np.empty((len(images_NHWC), image_size, image_size, num_channels), np.uint8)
    for i, image_HWC in enumerate(images_NHWC):
        pil = Image.fromarray(image_HWC[:, :, 0] if num_channels == 1 else image_HWC)
        out_NHWC[i] = np.asarray(pil.resize((image_size, image_size), Image.BILINEAR)).reshape(out_NHWC.shape[1:])
    return out_NHWC


def fit_NHWC(images_NHWC: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """uint8 images in another dataset's form, the whole batch at once in torch: converted to `channels` as PIL
    converts to "L" (ITU-R 601-2 luma in its 16-bit fixed point: equal) or "RGB" (grey repeated), then resized as
    `resize_NHWC` resizes real images: torch's antialiased bilinear on uint8 follows PIL's BILINEAR filter, within
    1 level, ≥ 99 % of values equal (tests/test_fit_images.py)."""
    images = torch.from_numpy(images_NHWC)
    if len(images) == 0:
        return np.empty((0, image_size, image_size, channels), np.uint8)
    if images.shape[3] != channels and channels == 1:
        r, g, b = images.to(torch.int32).unbind(3)
        images = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[..., None]
    elif images.shape[3] != channels:
        images = images.expand(-1, -1, -1, channels)
    if images.shape[1:3] != (image_size, image_size):  # the NCHW view of NHWC memory is torch's fast uint8 layout
        size = (image_size, image_size)
        images = F.interpolate(images.permute(0, 3, 1, 2), size, mode="bilinear", antialias=True).permute(0, 2, 3, 1)
    return np.ascontiguousarray(images.numpy())


def _finish(images_NHWC, labels_N, class_names, image_size: int | None, split_rule: dict | None = None) -> ImageSplit:
    return ImageSplit(
        resize_NHWC(images_NHWC, image_size), np.asarray(labels_N, np.int64), tuple(class_names), split_rule
    )


def stratified_split(images_NHWC: np.ndarray, labels_N: np.ndarray, split: str):
    """(images, labels, split rule) of one split of a set that ships whole: seeded, stratified, 80/20."""
    # scikit-learn is slow to import and only such sets need it.
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(
        images_NHWC, labels_N, test_size=TEST_FRACTION, stratify=labels_N, random_state=SPLIT_SEED
    )
    rule = {"method": "stratified", "test_fraction": TEST_FRACTION, "seed": SPLIT_SEED, "library": "scikit-learn"}
    return (train_x, train_y, rule) if split == "train" else (test_x, test_y, rule)


def _require_dir(source: str, path: Path | None, expected: str) -> Path:
    if path is None:
        raise ConfigError(f"{source}: --data.path is required ({expected})")
    if not path.exists():
        raise DataError(f"{source}: {path} not found; expected {expected}")
    return path


@register("digits")
def read_digits(split: str, path: Path | None, image_size: int | None) -> ImageSplit:
    """scikit-learn's bundled 8×8 digits (1,797 images, 0–16 scaled to 0–255), seeded stratified 80/20 split."""
    from sklearn.datasets import load_digits  # slow to import; only digits needs it

    if path is not None:
        raise ConfigError(f"digits: --data.path must be unset, the data ships with scikit-learn (got {path})")
    digits = load_digits()
    images_NHWC = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    x, y, rule = stratified_split(images_NHWC, digits.target, split)
    return _finish(x, y, [str(k) for k in range(10)], image_size, rule)


@register("cifar10")
def read_cifar10(split: str, path: Path | None, image_size: int | None) -> ImageSplit:
    """Official CIFAR-10 python batches; path is `cifar-10-batches-py` or its parent."""
    root = _require_dir("cifar10", path, "the cifar-10-batches-py directory or its parent")
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        batch = read_cifar_pickle(root / name)
        if b"data" not in batch or b"labels" not in batch:
            raise DataError(f"cifar10: {root / name}: missing key b'data' or b'labels'")
        data_N3072 = np.asarray(batch[b"data"])
        if data_N3072.dtype != np.uint8 or data_N3072.ndim != 2 or data_N3072.shape[1] != 3 * 32 * 32:
            raise DataError(
                f"cifar10: {root / name}: b'data' must be uint8 (N, 3072), got {data_N3072.dtype} {data_N3072.shape}"
            )
        if len(batch[b"labels"]) != len(data_N3072):
            raise DataError(f"cifar10: {root / name}: {len(batch[b'labels'])} labels for {len(data_N3072)} images")
        # Rows are channel-major: 1024 red, then green, then blue values, each 32×32 row-major.
        images.append(data_N3072.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], np.int64))
    class_names = CIFAR10_CLASS_NAMES
    if (root / "batches.meta").is_file():
        meta = read_cifar_pickle(root / "batches.meta")
        class_names = [n.decode() for n in meta.get(b"label_names", [])] or CIFAR10_CLASS_NAMES
    return _finish(np.concatenate(images), np.concatenate(labels), class_names, image_size)


def read_idx(file: Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (plain or .gz): magic 0x0000 0x08 ndim, big-endian uint32 sizes."""
    try:
        raw = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{file}: unreadable ({e})") from e
    if len(raw) < 4:
        raise DataError(f"{file}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{file}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, expected 0000 08 ndim)")
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise DataError(f"{file}: truncated IDX header ({len(raw)} of {header_bytes} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_bytes])
    if len(raw) - header_bytes != int(np.prod(shape)):
        raise DataError(
            f"{file}: IDX header says shape {shape} ({int(np.prod(shape))} bytes) but "
            f"{len(raw) - header_bytes} bytes follow; truncated or corrupt"
        )
    return np.frombuffer(raw, np.uint8, offset=header_bytes).reshape(shape)


def _idx_file(source: str, root: Path, name: str, hint: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{source}: {root / name}(.gz) not found; {hint}")


def _read_mnist_like(source: str, split: str, root: Path, class_names, image_size: int | None, hint: str) -> ImageSplit:
    prefix = "train" if split == "train" else "t10k"
    images_file = _idx_file(source, root, f"{prefix}-images-idx3-ubyte", hint)
    labels_file = _idx_file(source, root, f"{prefix}-labels-idx1-ubyte", hint)
    images_NHW, labels_N = read_idx(images_file), read_idx(labels_file)
    if images_NHW.ndim != 3 or labels_N.ndim != 1 or len(images_NHW) != len(labels_N):
        raise DataError(
            f"{source}: {images_file} shape {images_NHW.shape} and {labels_file} shape "
            f"{labels_N.shape} must be (N, H, W) and (N,)"
        )
    if labels_N.size and labels_N.max() >= len(class_names):
        raise DataError(f"{source}: {labels_file}: label {labels_N.max()} >= {len(class_names)} classes")
    return _finish(images_NHW[..., None], labels_N, class_names, image_size)


@register("mnist")
def read_mnist(split: str, path: Path | None, image_size: int | None) -> ImageSplit:
    """MNIST IDX files (plain or .gz) in the directory `path`."""
    hint = "expected the four MNIST IDX files there; pass --data.path"
    root = _require_dir("mnist", path, "a directory with the MNIST IDX files")
    return _read_mnist_like("mnist", split, root, [str(k) for k in range(10)], image_size, hint)


@register("fashion_mnist")
def read_fashion_mnist(split: str, path: Path | None, image_size: int | None) -> ImageSplit:
    """Fashion-MNIST IDX files (plain or .gz); `path` defaults to where Debian's dataset-fashion-mnist puts them."""
    hint = "install Debian's dataset-fashion-mnist or pass --data.path"
    root = FASHION_MNIST_DEBIAN_DIR if path is None else path
    if not root.is_dir():
        raise DataError(f"fashion_mnist: {root} not found; {hint}")
    return _read_mnist_like("fashion_mnist", split, root, FASHION_MNIST_CLASS_NAMES, image_size, hint)


def _npz_file(split: str, path: Path) -> Path:
    """A file as given (one set, split by `read_npz`), `<dir>/<split>.npz`, or `<prefix>-<split>.npz`."""
    for candidate in (path, path / f"{split}.npz", Path(f"{path}-{split}.npz")):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"npz: {path} not found; expected an .npz file, a directory with {split}.npz, or a prefix "
        f"with {path}-{split}.npz"
    )


@register("npz")
def read_npz(split: str, path: Path | None, image_size: int | None) -> ImageSplit:
    """An .npz with `x` uint8 (N, H, W[, C]), `y` integer (N,) and optionally `class_names` (K,).

    One file given as the path is one set: it is cut by `stratified_split` (recorded in the manifest), never
    served whole as both splits."""
    if path is None:
        raise ConfigError("npz: --data.path is required (an .npz file, a directory or a <prefix> of -train.npz)")
    file = _npz_file(split, path)
    try:
        with np.load(file, allow_pickle=False) as npz:
            for key in ("x", "y"):
                if key not in npz:
                    raise DataError(f"npz: {file}: missing key {key!r} (has {sorted(npz.keys())})")
            x, y = npz["x"], npz["y"]
            class_names = [str(n) for n in npz["class_names"]] if "class_names" in npz else None
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # not an npz, or object arrays needing pickle
        raise DataError(f"npz: {file}: unreadable ({e})") from e
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] not in (1, 3):
        raise DataError(f"npz: {file}: key 'x' must be uint8 (N, H, W[, C]) with C in 1, 3; got {x.dtype} {x.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != x.shape[:1] or (y.size and y.min() < 0):
        raise DataError(
            f"npz: {file}: key 'y' must be non-negative integers of shape ({len(x)},); got {y.dtype} {y.shape}"
        )
    num_classes = int(y.max()) + 1 if y.size else 0
    if class_names is None:
        class_names = [str(k) for k in range(num_classes)]
    elif len(class_names) < num_classes:
        raise DataError(
            f"npz: {file}: key 'class_names' has {len(class_names)} names but 'y' reaches {num_classes - 1}"
        )
    if file != path:  # the split's own file
        return _finish(x, y, class_names, image_size)
    counts = np.bincount(y)
    if counts[counts > 0].min(initial=2) < 2:
        raise DataError(f"npz: {file}: one file is split 80/20 per class, which needs ≥ 2 images of every class")
    x, y, rule = stratified_split(x, y, split)
    return _finish(x, y, class_names, image_size, rule | {"from": str(file)})


def list_image_folder(root: Path, split: str) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Files of `root/<split>/<class>/` (sorted by class, then name: the stable key order), their labels, and the
    class names: the sorted directory names of `root/train`, so that train and test share one label map."""
    train = root / "train"
    classes = tuple(sorted(d.name for d in train.iterdir() if d.is_dir())) if train.is_dir() else ()
    if not classes or not (root / split).is_dir():
        raise DataError(f"image_folder: expected {root}/<train|test>/<class>/*.png|jpg (missing {root / split})")
    files, labels = [], []
    for class_dir in sorted(d for d in (root / split).iterdir() if d.is_dir()):
        if class_dir.name not in classes:
            raise DataError(f"image_folder: {class_dir}: class {class_dir.name!r} is not among {train}'s")
        found = sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)  # ImageNet's .JPEG
        files += found
        labels += [classes.index(class_dir.name)] * len(found)
    if not files:
        raise DataError(f"image_folder: no {'/'.join(IMAGE_SUFFIXES)} images under {root / split}/<class>/")
    return files, labels, classes


@register("image_folder")
def read_image_folder(split: str, path: Path | None, image_size: int | None) -> ImageSplit:
    """`path/<split>/<class>/*.{png,jpg,jpeg}`; classes are the train split's sorted directory names."""
    root = _require_dir("image_folder", path, "<path>/train/<class>/*.png and <path>/test/<class>/*.png")
    files, labels, class_dirs = list_image_folder(root, split)
    pils = []
    for file in files:
        try:
            with Image.open(file) as pil:
                pil.load()  # decode now so the file handle can close
        except OSError as e:
            raise DataError(f"image_folder: {file}: not a readable image ({e})") from e
        pils.append(pil)
    mode = "L" if all(p.mode == "L" for p in pils) else "RGB"  # grey only if every image is
    arrays = []
    for file, pil in zip(files, pils, strict=True):
        pil = pil.convert(mode)
        if image_size is not None:
            pil = pil.resize((image_size, image_size), Image.BILINEAR)
        elif pil.size != pils[0].size:
            raise DataError(f"image_folder: {file} is {pil.size}, {files[0]} is {pils[0].size}; pass --data.image_size")
        arrays.append(np.asarray(pil).reshape(pil.height, pil.width, -1))
    return _finish(np.stack(arrays), labels, class_dirs, image_size)
