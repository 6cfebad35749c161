"""Generator kinds through the contract: each opens and samples; each breach of the contract is one clear error;
the truncation conventions give the latents their sources describe."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from model_builders import ScriptedNoise
from PIL import Image
from scipy import stats

from distgan.config import GanConfig
from distgan.data.shards import write_shards
from distgan.data.sources import ImageSplit
from distgan.errors import ConfigError, DataError
from distgan.generators import checked_sample, knob_values, open_generator
from distgan.models.gan import ConditionalGenerator
from distgan.models.truncation import sample_images, truncated_latents
from distgan.runtime.hashing import sha256_of
from distgan.train.gan import save_generator

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Truncation conventions.


@pytest.mark.parametrize(
    ("convention", "reference"),
    [("resample", stats.truncnorm(-1.0, 1.0)), ("scale", stats.truncnorm(-2.0, 2.0, scale=0.5))],
)
def test_truncation_conventions_at_half(convention, reference):
    """τ = 0.5, f = 2: "resample" is N(0, 1) truncated at ±1 (std 0.54), "scale" is 0.5 × N(0, 1) truncated at ±2
    (std 0.44, BigGAN's `truncation * truncnorm.rvs(-2, 2)`): std and distribution match scipy's truncnorm."""
    z = truncated_latents(40_000, 4, truncation=0.5, factor=2.0, convention=convention, generator=seeded(0))
    assert z.std().item() == pytest.approx(reference.std(), abs=0.004)
    assert round(reference.std(), 2) == {"resample": 0.54, "scale": 0.44}[convention]
    assert stats.kstest(z[:, 0].double().numpy(), reference.cdf).pvalue > 0.01


def test_truncation_default_convention_is_resample_and_unknown_is_refused():
    default = truncated_latents(64, 3, truncation=0.7, factor=2.0, generator=seeded(1))
    assert torch.equal(default, truncated_latents(64, 3, truncation=0.7, factor=2.0, convention="resample",
                                                  generator=seeded(1)))  # fmt: skip
    with pytest.raises(ValueError, match="resample"):
        truncated_latents(4, 2, truncation=0.5, factor=2.0, convention="clip", generator=seeded(1))


# Kind distgan.


@pytest.fixture(scope="module")
def trained_gan(tmp_path_factory) -> tuple[Path, ConditionalGenerator]:
    torch.manual_seed(0)
    net = ConditionalGenerator(latent_dim=16, num_classes=3, image_size=8, channels=1, base_width=8)
    path = tmp_path_factory.mktemp("gan") / "generator.pt"
    save_generator(path, net, GanConfig(latent_dim=16, g_width=8), image_size=8, channels=1)
    return path, net


def test_distgan_kind_makes_the_images_of_sample_images(trained_gan):
    path, net = trained_gan
    loaded = open_generator("distgan", weights=path, num_classes=3, device=CPU)
    labels = np.array([0, 2, 1, 1, 2, 0, 0], np.int64)
    images = checked_sample(loaded, torch.from_numpy(labels), 0.5, seeded(5))
    assert torch.equal(images, torch.from_numpy(sample_images(net, labels, truncation=0.5, factor=2.0, seed=5)))
    assert loaded.knob == "truncation" and (loaded.image_size, loaded.channels) == (8, 1)
    assert loaded.identity["sha256"] == sha256_of(path) and loaded.identity["truncation_convention"] == "resample"
    scaled = open_generator("distgan", weights=path, num_classes=3, device=CPU, truncation_convention="scale")
    assert scaled.identity["truncation_convention"] == "scale"
    assert not torch.equal(checked_sample(scaled, labels, 0.5, seeded(5)), images)


def test_distgan_kind_refuses_another_class_count(trained_gan):
    with pytest.raises(ConfigError, match="makes 3 classes, the dataset has 10"):
        open_generator("distgan", weights=trained_gan[0], num_classes=10, device=CPU)


# Kind python.


def documented_example() -> str:
    """The python block under '## Example: a `python` generator' in docs/generators.md."""
    text = (REPO / "docs/generators.md").read_text()
    section = text[text.index("## Example: a `python` generator") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```", start)]


def test_the_documented_python_generator_makes_images_that_carry_their_class(tmp_path):
    (tmp_path / "gens.py").write_text(documented_example())
    target = f"{tmp_path}/gens.py:colour_blobs"
    loaded = open_generator("python", target, num_classes=10, device=CPU)
    labels = torch.arange(10).repeat(3)
    images = checked_sample(loaded, labels, None, seeded(0))
    assert images.shape == (30, 16, 16, 3) and loaded.identity["sha256"] == sha256_of(tmp_path / "gens.py")
    colours = loaded.generator.colours
    for image, label in zip(images, labels, strict=True):
        blob = image.reshape(-1, 3)[image.reshape(-1, 3).amax(1) > 0]
        assert len(blob) > 0 and (blob == colours[label]).all()  # the disc is the class's colour
        nearest = (colours.float() - blob[0].float()).norm(dim=1).argmin()
        assert nearest == label  # and the class can be read back from it
    assert torch.equal(images, checked_sample(loaded, labels, None, seeded(0)))
    assert not torch.equal(images, checked_sample(loaded, labels, None, seeded(1)))


def test_python_target_as_an_importable_module(tmp_path, monkeypatch):
    (tmp_path / "user_gens_importable.py").write_text(documented_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = open_generator("python", "user_gens_importable:colour_blobs", num_classes=4, device=CPU)
    assert checked_sample(loaded, torch.tensor([3, 0]), None, seeded(0)).shape == (2, 16, 16, 3)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:make", "no module named 'no_such_module_xyz'"),
        ("{tmp}/missing.py:make", "missing.py is not a file"),
        ("{tmp}/gens.py:no_function", "has no function 'no_function'"),
        ("{tmp}/gens.py", "must be module:function or path/to/file.py:function"),
    ],
)
def test_python_target_that_does_not_resolve_is_named(tmp_path, target, message):
    (tmp_path / "gens.py").write_text(documented_example())
    with pytest.raises(ConfigError, match=re.escape(message)):
        open_generator("python", target.format(tmp=tmp_path), num_classes=3, device=CPU)


BREACHES = """
import types
import numpy as np
import torch


class Fixed:
    knob, channels, image_size = None, 1, 4

    def __init__(self, make, **attributes):
        self.make = make
        self.__dict__.update(attributes)

    def sample(self, labels, knob_value, generator):
        return self.make(len(labels))


def zeros(*shape, dtype=torch.uint8):
    return lambda n: torch.zeros(n + shape[0], *shape[1:], dtype=dtype)


def good(num_classes, device): return Fixed(zeros(0, 4, 4, 1))
def float_images(num_classes, device): return Fixed(zeros(0, 4, 4, 1, dtype=torch.float32))
def no_channel_axis(num_classes, device): return Fixed(zeros(0, 4, 4))
def wrong_size(num_classes, device): return Fixed(zeros(0, 5, 5, 1))
def wrong_channels(num_classes, device): return Fixed(zeros(0, 4, 4, 3))
def one_too_many(num_classes, device): return Fixed(zeros(1, 4, 4, 1))
def numpy_images(num_classes, device): return Fixed(lambda n: np.zeros((n, 4, 4, 1), np.uint8))
def no_sample(num_classes, device): return types.SimpleNamespace(knob=None, channels=1, image_size=4)
def zero_size(num_classes, device): return Fixed(zeros(0, 4, 4, 1), image_size=0)
def two_channels(num_classes, device): return Fixed(zeros(0, 4, 4, 1), channels=2)
def numeric_knob(num_classes, device): return Fixed(zeros(0, 4, 4, 1), knob=5)
"""


@pytest.fixture(scope="module")
def breaches(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("breaches") / "breaches.py"
    path.write_text(BREACHES)
    return path


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("float_images", "sample returned dtype torch.float32, the contract is torch.uint8"),
        ("no_channel_axis", "sample returned shape (3, 4, 4), the contract is [N, H, W, C]"),
        ("wrong_size", "sample returned images of shape (H, W, C) = (5, 5, 1), not the declared (4, 4, 1)"),
        ("wrong_channels", "sample returned images of shape (H, W, C) = (4, 4, 3), not the declared (4, 4, 1)"),
        ("one_too_many", "sample returned 4 images for 3 labels"),
        ("numpy_images", "sample returned ndarray, not a torch.Tensor"),
    ],
)
def test_an_output_breach_is_one_data_error_naming_the_generator(breaches, factory, message):
    loaded = open_generator("python", f"{breaches}:{factory}", num_classes=3, device=CPU)
    with pytest.raises(DataError, match=re.escape(f"python generator '{breaches}:{factory}': {message}")):
        checked_sample(loaded, torch.tensor([0, 1, 2]), None, seeded(0))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("no_sample", "SimpleNamespace has no attribute 'sample'"),
        ("zero_size", "`image_size` must be a positive int (got 0)"),
        ("two_channels", "`channels` must be 1 or 3 (got 2)"),
        ("numeric_knob", "`knob` must be a str or None (got 5)"),
    ],
)
def test_an_attribute_breach_is_refused_when_opened(breaches, factory, message):
    with pytest.raises(ConfigError, match=re.escape(f"python generator '{breaches}:{factory}': {message}")):
        open_generator("python", f"{breaches}:{factory}", num_classes=3, device=CPU)


def test_labels_out_of_range_and_a_knob_value_without_a_knob_are_refused_before_sampling(breaches):
    loaded = open_generator("python", f"{breaches}:good", num_classes=3, device=CPU)
    assert checked_sample(loaded, torch.tensor([0, 2]), None, seeded(0)).shape == (2, 4, 4, 1)
    with pytest.raises(ConfigError, match=re.escape(f"'{breaches}:good': label 3 is outside [0, 3)")):
        checked_sample(loaded, torch.tensor([0, 3, 1]), None, seeded(0))
    with pytest.raises(ConfigError, match="label -1 is outside"):
        checked_sample(loaded, np.array([-1]), None, seeded(0))
    with pytest.raises(ConfigError, match="has no sampling knob"):
        checked_sample(loaded, torch.tensor([0]), 0.5, seeded(0))


def test_an_unknown_kind_names_the_flag_and_the_kinds():
    with pytest.raises(ConfigError, match=r"--generator.kind must be one of \[.*'python'.*'samples'.*\(got 'gans'\)"):
        open_generator("gans", num_classes=3, device=CPU)


# Kind torchscript.


def test_torchscript_round_trip_samples_as_the_eager_module(tmp_path):
    eager = ScriptedNoise()
    torch.jit.script(eager).save(str(tmp_path / "model.pt"))
    loaded = open_generator("torchscript", weights=tmp_path / "model.pt", num_classes=5, device=CPU)
    assert (loaded.image_size, loaded.channels, loaded.knob) == (6, 3, "truncation")
    assert loaded.identity["sha256"] == sha256_of(tmp_path / "model.pt")
    labels = torch.tensor([4, 0, 2])
    generator = seeded(3)
    first = checked_sample(loaded, labels, 0.5, generator)
    assert torch.equal(first, eager.sample(labels, 0.5, seeded(3)))  # the same generator state, the same images
    assert not torch.equal(first, checked_sample(loaded, labels, 0.5, generator))  # the state advanced
    assert torch.equal(first // 40, labels[:, None, None, None].expand(3, 6, 6, 3).to(torch.uint8))
    by_target = open_generator("torchscript", str(tmp_path / "model.pt"), num_classes=5, device=CPU)
    assert torch.equal(first, checked_sample(by_target, labels, 0.5, seeded(3)))


def test_torchscript_refuses_a_file_that_is_not_scripted(tmp_path):
    (tmp_path / "notes.pt").write_text("not an archive")
    with pytest.raises(DataError, match="notes.pt: not a TorchScript file"):
        open_generator("torchscript", weights=tmp_path / "notes.pt", num_classes=5, device=CPU)
    with pytest.raises(ConfigError, match="--generator.weights: .*absent.pt is not a file"):
        open_generator("torchscript", weights=tmp_path / "absent.pt", num_classes=5, device=CPU)


# Kind samples.

CLASS_NAMES = ("cat", "dog", "emu")  # the dataset's, in label order
PER_CLASS = 4


def tagged_images(label: int, num: int) -> np.ndarray:
    """8×8 grey images whose level says their dataset label and index: 10·label + index + 1."""
    return np.stack([np.full((8, 8, 1), 10 * label + i + 1, np.uint8) for i in range(num)])


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory) -> Path:
    """0.5/: a folder tree; 1.0/: shards whose classes are listed in another order than the dataset's."""
    root = tmp_path_factory.mktemp("samples")
    for label, name in enumerate(CLASS_NAMES):
        (root / "0.5" / name).mkdir(parents=True)
        for i, image in enumerate(tagged_images(label, PER_CLASS)):
            Image.fromarray(image[:, :, 0]).save(root / "0.5" / name / f"{i:03d}.png")
    shard_order = ("emu", "cat", "dog")
    images = np.concatenate([tagged_images(CLASS_NAMES.index(name), PER_CLASS) for name in shard_order])
    split = ImageSplit(images, np.repeat(np.arange(3), PER_CLASS), shard_order)
    write_shards(split, root / "1.0", max_samples_per_shard=5, provenance={"kind": "test"})  # 3 shards
    return root


@pytest.mark.parametrize("knob_value", [0.5, 1.0])
def test_samples_hands_out_each_image_of_the_requested_class_once(samples_dir, knob_value):
    assert knob_values(samples_dir) == [0.5, 1.0]
    loaded = open_generator("samples", str(samples_dir), num_classes=3, device=CPU, class_names=CLASS_NAMES)
    assert (loaded.knob, loaded.image_size, loaded.channels) == ("knob", 8, 1)
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    halves = [checked_sample(loaded, labels, knob_value, seeded(7)) for _ in range(2)]
    levels = torch.cat(halves)[:, 0, 0, 0].long()
    assert torch.equal((levels - 1) // 10, labels.repeat(2))  # every image is of its requested class (by name)
    assert sorted(levels.tolist()) == sorted(10 * k + i + 1 for k in range(3) for i in range(PER_CLASS))
    again = open_generator("samples", str(samples_dir), num_classes=3, device=CPU, class_names=CLASS_NAMES)
    assert torch.equal(checked_sample(again, labels, knob_value, seeded(7)), halves[0])  # seeded order
    with pytest.raises(DataError, match=r"class 'emu' has 0 unused images, 1 were asked for"):
        checked_sample(loaded, torch.tensor([2]), knob_value, seeded(7))


def test_samples_refuses_unmapped_classes_and_names_its_knob(samples_dir, tmp_path):
    with pytest.raises(DataError, match="class 'cat' is not among the dataset's"):
        open_generator("samples", str(samples_dir), num_classes=3, device=CPU, class_names=("ant", "dog", "emu"))
    with pytest.raises(ConfigError, match="needs the dataset's class names"):
        open_generator("samples", str(samples_dir), num_classes=3, device=CPU)
    (tmp_path / "guidance=4.0" / "cat").mkdir(parents=True)
    Image.fromarray(tagged_images(0, 1)[0, :, :, 0]).save(tmp_path / "guidance=4.0" / "cat" / "a.png")
    loaded = open_generator("samples", str(tmp_path), num_classes=3, device=CPU, class_names=CLASS_NAMES)
    assert loaded.knob == "guidance" and knob_values(tmp_path) == [4.0]
    with pytest.raises(ConfigError, match=r"no folder for knob value 2.0 \(it has \[4.0\]\)"):
        checked_sample(loaded, torch.tensor([0]), 2.0, seeded(0))
