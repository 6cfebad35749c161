"""Kind `samples`: images generated elsewhere, one folder per knob value under `--generator.target DIR`:

    DIR/<value>/<class>/*.png|jpg|jpeg    a folder tree whose class folders carry the dataset's class names
    DIR/<value>/manifest.json, shard-*    or distgan shards (`distgan sample` writes them)

`<value>` is a number (`0.5`), or `<knob>=<number>` (`guidance=4.0`) to name the knob (else it is "knob"); the
sweep's knob values are the folders present (`knob_values`). Classes map to the dataset's by name. `sample` hands
out, for each requested label, the next unused image of that class: each class's images in an order drawn with the
generator of the first call at that value; a class with too few images left is a DataError.

The identity digests the listing (names, sizes, modification times) of folder trees and the manifests of shard
directories (which hold each shard's sha256): replacing a file changes it, without reading every image.
"""

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distgan.data.manifest import image_extension, manifest_digest, read_manifest
from distgan.data.shards import BadSamples, usable_shards
from distgan.data.sources import IMAGE_SUFFIXES
from distgan.errors import ConfigError, DataError
from distgan.generators.registry import GENERATORS, BuildRequest, Built, refuse_unused

DEFAULT_KNOB = "knob"


def knob_folders(root: Path) -> tuple[str, dict[float, Path]]:
    """(knob name, {value: folder} in increasing value) of a samples directory."""
    if not root.is_dir():
        raise ConfigError(f"--generator.target: {root} is not a directory (expected DIR/<value>/<class>/*.png)")
    knobs, folders = set(), {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        knob, _, number = folder.name.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise DataError(f"{folder}: a knob-value folder is named <number> or <knob>=<number>") from None
        if value in folders:
            raise DataError(f"{folder} and {folders[value]}: two folders for knob value {value}")
        knobs.add(knob or DEFAULT_KNOB)
        folders[value] = folder
    if not folders:
        raise DataError(f"{root}: no knob-value folders (expected {root}/<value>/<class>/*.png or shards)")
    if len(knobs) > 1:
        raise DataError(f"{root}: the folders name different knobs {sorted(knobs)}")
    return knobs.pop(), dict(sorted(folders.items()))


def knob_values(root: Path) -> list[float]:
    """The knob values of a samples directory: its folders' numbers, sorted."""
    return list(knob_folders(Path(root))[1])


def is_shard_dir(folder: Path) -> bool:
    return (folder / "manifest.json").is_file()


def class_folders(folder: Path, class_names: tuple[str, ...]) -> list[tuple[int, Path]]:
    """(dataset label, folder) of each class folder of a tree; DataError for a name the dataset lacks."""
    found = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if class_dir.name not in class_names:
            raise DataError(f"{class_dir}: class {class_dir.name!r} is not among the dataset's {list(class_names)}")
        found.append((class_names.index(class_dir.name), class_dir))
    return found


def image_files(class_dir: Path) -> list[Path]:
    return sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


def shard_labels(manifest: dict, folder: Path, class_names: tuple[str, ...]) -> list[int]:
    """Dataset label of each of the shards' labels, by class name."""
    for name in manifest["class_names"]:
        if name not in class_names:
            raise DataError(f"{folder}/manifest.json: class {name!r} is not among the dataset's {list(class_names)}")
    return [class_names.index(name) for name in manifest["class_names"]]


@dataclass(frozen=True)
class StoredImage:
    """Where one image's encoded bytes are: a whole file, or a member of a shard tar."""

    file: Path
    offset: int = 0
    size: int = -1  # -1: the whole file
    key: str | None = None  # the sample key inside a shard

    def read(self) -> bytes:
        with open(self.file, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)

    def __str__(self) -> str:
        return str(self.file) if self.key is None else f"{self.file} key {self.key}"


def tree_images(folder: Path, class_names: tuple[str, ...]) -> list[list[StoredImage]]:
    """The images of a folder tree, per dataset label."""
    per_class: list[list[StoredImage]] = [[] for _ in class_names]
    for label, class_dir in class_folders(folder, class_names):
        per_class[label] = [StoredImage(file) for file in image_files(class_dir)]
    return per_class


def shard_images(folder: Path, class_names: tuple[str, ...]) -> list[list[StoredImage]]:
    """The images of a shard directory, per dataset label; shards are checked against their sha256 first."""
    manifest = read_manifest(folder)
    to_dataset = shard_labels(manifest, folder, class_names)
    ext = image_extension(manifest)
    per_class: list[list[StoredImage]] = [[] for _ in class_names]
    for shard in usable_shards(folder, manifest, verify=True, bad=BadSamples()):
        path = folder / shard["name"]
        members: dict[str, dict] = {}
        with tarfile.open(path) as tar:
            for member in tar:
                key, _, member_ext = member.name.rpartition("/")[2].partition(".")
                if member_ext == "cls":
                    members.setdefault(key, {})["cls"] = int(tar.extractfile(member).read())
                elif member_ext == ext:
                    members.setdefault(key, {})["image"] = (member.offset_data, member.size)
        for key, found in members.items():
            if set(found) != {"cls", "image"}:
                raise DataError(f"{path} key {key}: missing {ext if 'image' not in found else 'cls'} entry")
            offset, size = found["image"]
            per_class[to_dataset[found["cls"]]].append(StoredImage(path, offset, size, key))
    return per_class


def decode(stored: StoredImage, image_size: int, channels: int) -> np.ndarray:
    """uint8 (H, W, C) of one stored image; DataError naming it when it is not of the set's size and channels."""
    try:
        with Image.open(io.BytesIO(stored.read())) as pil:
            if channels == 1 and pil.mode != "L":
                raise DataError(f"{stored}: a {pil.mode} image in a set of grey images")
            pil = pil.convert("L" if channels == 1 else "RGB")
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for damaged files
        raise DataError(f"{stored}: not a readable image ({err})") from None
    if pil.size != (image_size, image_size):
        raise DataError(f"{stored}: {pil.width}×{pil.height} pixels, the set's images are {image_size}×{image_size}")
    return np.asarray(pil).reshape(image_size, image_size, channels)


def folder_shape(folder: Path) -> tuple[int, int]:
    """(image_size, channels) of a knob-value folder: from its manifest, or its first image."""
    if is_shard_dir(folder):
        shape = read_manifest(folder)["image_shape_HWC"]
        if shape is None or shape[0] != shape[1]:
            raise DataError(f"{folder}/manifest.json: images of shape {shape}; generated images are square")
        return shape[0], shape[2]
    first = next((f for d in sorted(folder.iterdir()) if d.is_dir() for f in image_files(d)), None)
    if first is None:
        raise DataError(f"{folder}: no images (expected {folder}/<class>/*.png|jpg, or shards)")
    with Image.open(first) as pil:
        if pil.width != pil.height:
            raise DataError(f"{first}: {pil.width}×{pil.height} pixels; generated images are square")
        return pil.width, 1 if pil.mode == "L" else 3


def listing_digest(folders: dict[float, Path]) -> str:
    """sha256 of what each folder holds: shard manifests' digests, or tree files' names, sizes and times."""
    digest = hashlib.sha256()
    for folder in folders.values():
        if is_shard_dir(folder):
            digest.update(f"{folder.name}\tmanifest\t{manifest_digest(folder)}\n".encode())
            continue
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for file in image_files(class_dir):
                stat = file.stat()
                name = f"{folder.name}/{class_dir.name}/{file.name}"
                digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class SampleFolders:
    """The contract over a samples directory: each call hands out images not handed out before."""

    def __init__(self, root: Path, class_names: tuple[str, ...]):
        self.root, self.class_names = root, class_names
        self.knob, self.folders = knob_folders(root)
        shapes = {folder: folder_shape(folder) for folder in self.folders.values()}
        self.image_size, self.channels = next(iter(shapes.values()))
        for folder, shape in shapes.items():
            if shape != (self.image_size, self.channels):
                raise DataError(f"{folder}: images of size and channels {shape}, {self.root}'s first folder has "
                                f"{(self.image_size, self.channels)}")  # fmt: skip
            if is_shard_dir(folder):
                shard_labels(read_manifest(folder), folder, class_names)
            else:
                class_folders(folder, class_names)
        self.ordered: dict[float, list[list[StoredImage]]] = {}  # per value and label: its images in order
        self.num_used: dict[float, np.ndarray] = {}  # per value and label: how many of them were handed out

    def images_of(self, knob_value: float, generator: torch.Generator) -> list[list[StoredImage]]:
        """The images at a value, per label: listed, and put in an order drawn with `generator`, at the first call."""
        if knob_value not in self.ordered:
            folder = self.folders[knob_value]
            per_class = (shard_images if is_shard_dir(folder) else tree_images)(folder, self.class_names)
            self.ordered[knob_value] = [
                [images[i] for i in torch.randperm(len(images), generator=generator).tolist()] for images in per_class
            ]
            self.num_used[knob_value] = np.zeros(len(self.class_names), np.int64)
        return self.ordered[knob_value]

    def sample(self, labels: torch.Tensor, knob_value: float | None, generator: torch.Generator) -> torch.Tensor:
        if knob_value not in self.folders:
            raise ConfigError(f"{self.root} has no folder for knob value {knob_value} (it has {list(self.folders)})")
        ordered, used = self.images_of(knob_value, generator), self.num_used[knob_value]
        wanted = np.bincount(labels.numpy(), minlength=len(self.class_names))
        left = np.array([len(images) for images in ordered]) - used
        short = np.flatnonzero(wanted > left)
        if len(short) > 0:
            label = short[0]
            raise DataError(
                f"{self.folders[knob_value]}: class {self.class_names[label]!r} has {left[label]} unused images, "
                f"{wanted[label]} were asked for (each image is handed out once)"
            )
        taken = []
        for label in labels.tolist():
            taken.append(ordered[label][used[label]])
            used[label] += 1
        return torch.from_numpy(np.stack([decode(stored, self.image_size, self.channels) for stored in taken]))


@GENERATORS.register("samples")
def build_samples(request: BuildRequest) -> Built:
    """`--generator.target DIR` (module docstring); classes map by name onto `class_names`."""
    refuse_unused("samples", "--generator.weights", request.weights)
    if request.target is None:
        raise ConfigError("--generator.kind samples needs --generator.target DIR (DIR/<value>/<class>/*.png)")
    if request.class_names is None:
        raise ConfigError("--generator.kind samples maps classes by name: it needs the dataset's class names")
    folders = SampleFolders(Path(request.target), request.class_names)
    return Built(folders, listing_digest(folders.folders), "samples listing")
