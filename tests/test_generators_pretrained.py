"""The `biggan` and `diffusers` generator kinds, with the real architectures at random weights (none can be fetched
here): BigGAN-deep 128 from pytorch-pretrained-biggan's config class, a tiny DiTPipeline from diffusers' classes,
each saved in its package's layout and loaded through its builder; and the precision they sample in (bf16 autocast,
the GPUs' default, run here on the CPU), within a stated tolerance of fp32 and recorded with the set."""

import numpy as np
import pytest
import pytorch_pretrained_biggan as biggan_package
import torch
from model_builders import save_random_biggan, save_tiny_dit
from scipy import stats

from distgan.data.transforms import to_uint8_images
from distgan.errors import ConfigError
from distgan.generators import LoadedGenerator, checked_sample, open_generator
from distgan.generators.biggan import BigGANGenerator, load_biggan
from distgan.generators.diffusers_dit import DiTGenerator, load_dit_pipeline, parse_steps
from distgan.generators.imagenet_synsets import IMAGENET_SYNSETS, imagenet_class_indices
from distgan.generators.precision import Precision, sampling_precision
from distgan.generators.sampling import sample_to_shards
from distgan.runtime.distributed import PRECISION_ENV
from distgan.runtime.hashing import sha256_of

CPU = torch.device("cpu")
# Three real classes, in an image-folder tree's (sorted) order: tench, goldfish, toilet tissue.
SYNSETS = ["n01440764", "n01443537", "n15075141"]
FP32, BF16 = Precision(None, tf32=False), Precision(torch.bfloat16, tf32=False)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def open_biggan(weights, class_names=SYNSETS) -> LoadedGenerator:
    return open_generator("biggan", None, weights, num_classes=len(class_names), device=CPU, class_names=class_names)


def open_dit(weights, class_names=SYNSETS) -> LoadedGenerator:
    return open_generator("diffusers", "steps=2", weights, num_classes=len(class_names), device=CPU,
                          class_names=class_names)  # fmt: skip


# ImageNet synsets.


def test_synsets_are_imagenets_1000_in_index_order():
    assert len(IMAGENET_SYNSETS) == len(set(IMAGENET_SYNSETS)) == 1000
    assert list(IMAGENET_SYNSETS) == sorted(IMAGENET_SYNSETS)  # an image-folder tree's order is the index order
    assert IMAGENET_SYNSETS[:2] == ("n01440764", "n01443537") and IMAGENET_SYNSETS[-1] == "n15075141"
    # BigGAN's own table (WordNet offset → class index) agrees entry by entry.
    assert all(biggan_package.utils.IMAGENET[int(s[1:])] == i for i, s in enumerate(IMAGENET_SYNSETS))


def test_class_mapping_accepts_synsets_and_names_those_that_do_not_map():
    assert imagenet_class_indices(SYNSETS, num_classes=3, kind="biggan").tolist() == [0, 1, 999]
    with pytest.raises(ConfigError, match="no class names"):
        imagenet_class_indices(None, num_classes=4, kind="biggan")
    with pytest.raises(ConfigError, match=r"--generator.kind biggan.*2 of 3 are not, e.g. \['cat', 'dog'\]"):
        imagenet_class_indices(["cat", "n01440764", "dog"], num_classes=3, kind="biggan")


# BigGAN-deep.


@pytest.fixture(scope="module")
def biggan_dir(tmp_path_factory):
    """BigGAN-deep 128 (the package's default config: 50 M parameters) at random weights, in the package's layout."""
    return save_random_biggan(tmp_path_factory.mktemp("biggan-deep-128"))


@pytest.fixture(scope="module")
def loaded_biggan(biggan_dir) -> LoadedGenerator:
    return open_biggan(biggan_dir)


@pytest.fixture(scope="module")
def biggan(loaded_biggan) -> BigGANGenerator:
    return loaded_biggan.generator


def test_biggan_images_are_uint8_nhwc_and_seeded(loaded_biggan, biggan_dir):
    assert (loaded_biggan.image_size, loaded_biggan.channels, loaded_biggan.knob) == (128, 3, "truncation")
    identity = loaded_biggan.identity
    assert identity["sha256"] == sha256_of(biggan_dir / "pytorch_model.bin")
    assert identity["truncation_convention"] == "scale"
    labels = torch.tensor([0, 2], dtype=torch.int64)
    first = checked_sample(loaded_biggan, labels, 0.5, seeded(1))  # the contract's checks pass
    assert first.dtype == torch.uint8 and first.shape == (2, 128, 128, 3)
    assert torch.equal(first, checked_sample(loaded_biggan, labels, 0.5, seeded(1)))
    assert not torch.equal(first, checked_sample(loaded_biggan, labels, 0.5, seeded(2)))
    assert first.float().std() > 1  # not a constant image


def test_biggan_matches_the_packages_own_loader(biggan, biggan_dir):
    """Same weights as `BigGAN.from_pretrained(dir)`, dataset classes onto BigGAN's one-hot, [-1, 1] → uint8."""
    reference = biggan_package.BigGAN.from_pretrained(str(biggan_dir)).eval()
    labels, truncation = torch.tensor([1, 2], dtype=torch.int64), 0.4
    z = biggan.latents(2, truncation, seeded(3))
    one_hot = torch.zeros(2, 1000)
    one_hot[0, 1] = one_hot[1, 999] = 1  # goldfish, toilet tissue
    with torch.no_grad():
        expected = to_uint8_images(reference(z, one_hot, truncation))
    assert np.array_equal(biggan.sample(labels, truncation, seeded(3)).numpy(), expected)


def test_biggan_latents_follow_biggans_scale_convention(biggan):
    """'scale': the same truncated-normal draw on [−2, 2], times τ (the package's truncated_noise_sample)."""
    full = biggan.latents(200, 1.0, seeded(4))
    half = biggan.latents(200, 0.5, seeded(4))
    torch.testing.assert_close(half, 0.5 * full)
    assert half.abs().max() <= 1.0
    assert stats.kstest(full.double().numpy().ravel(), stats.truncnorm(-2, 2).cdf).pvalue > 0.01


def test_biggan_above_truncation_1_uses_its_widest_statistics(biggan):
    """The paper's τ = 1.5 and 2: wider latents, with the batch-norm statistics of τ = 1 (the checkpoint has none
    beyond): the images are those of the model called at 1 on the τ = 1.5 latents."""
    images = biggan.sample(torch.tensor([0, 2]), 1.5, seeded(3))
    z = biggan.latents(2, 1.5, seeded(3))
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 999]), 1000).float()
    with torch.no_grad():
        expected = to_uint8_images(biggan.model(z, one_hot, 1.0))
    assert np.array_equal(images.numpy(), expected)


def test_biggan_refuses_what_it_cannot_do(biggan, biggan_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"truncation must be > 0"):
        biggan.sample(torch.tensor([0]), 0.0, seeded(0))
    with pytest.raises(ConfigError, match=r"e.g. \['0', '1'\]"):
        open_biggan(biggan_dir, class_names=["0", "1"])  # digits' class names are not ImageNet's
    with pytest.raises(ConfigError, match="needs --generator.weights"):
        open_biggan(None)
    other_config = (biggan_dir / "config.json").read_text().replace('"z_dim": 128', '"z_dim": 64')
    (tmp_path / "config.json").write_text(other_config)
    (tmp_path / "pytorch_model.bin").symlink_to(biggan_dir / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="does not fit config.json"):  # from_pretrained would load it half-random
        open_biggan(tmp_path)


# DiT through diffusers.


@pytest.fixture(scope="module")
def dit_dir(tmp_path_factory):
    """A tiny DiTPipeline at random weights (tests/model_builders.py), saved with save_pretrained."""
    return save_tiny_dit(tmp_path_factory.mktemp("dit-tiny"))


@pytest.fixture(scope="module")
def loaded_dit(dit_dir) -> LoadedGenerator:
    return open_dit(dit_dir)


@pytest.fixture(scope="module")
def dit(loaded_dit):
    return loaded_dit.generator


def test_dit_images_are_uint8_nhwc_and_seeded(loaded_dit, dit):
    assert (loaded_dit.image_size, loaded_dit.channels, loaded_dit.knob) == (16, 3, "guidance")  # 8 latent px × 2
    assert dit.num_inference_steps == 2
    assert loaded_dit.identity["truncation_convention"] is None
    labels = torch.tensor([0, 1, 2], dtype=torch.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        rng_before = torch.get_rng_state()
        first = checked_sample(loaded_dit, labels, 4.0, seeded(1))
        assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's global RNG is left as it was
        torch.manual_seed(456)  # DDPM's steps draw from the global RNG: its state must not matter
        again = checked_sample(loaded_dit, labels, 4.0, seeded(1))
    assert first.dtype == torch.uint8 and first.shape == (3, 16, 16, 3)
    assert torch.equal(first, again)
    assert not torch.equal(first, checked_sample(loaded_dit, labels, 4.0, seeded(2)))


def test_dit_guidance_scale_and_class_change_the_images(dit, dit_dir):
    labels = torch.tensor([0, 2], dtype=torch.int64)
    unguided = dit.sample(labels, 1.0, seeded(5))
    assert not torch.equal(unguided, dit.sample(labels, 4.0, seeded(5)))
    # The dataset's class 2 (toilet tissue) is ImageNet class 999, whatever the dataset's order.
    in_imagenet_order = open_dit(dit_dir, class_names=list(IMAGENET_SYNSETS)).generator
    assert torch.equal(unguided, in_imagenet_order.sample(torch.tensor([0, 999]), 1.0, seeded(5)))
    assert not torch.equal(unguided, in_imagenet_order.sample(torch.tensor([0, 998]), 1.0, seeded(5)))


def test_dit_refuses_what_it_cannot_do(dit, dit_dir):
    assert parse_steps(None) == 50 and parse_steps("steps=25") == 25
    for bad in ("25", "steps=0", "step=3"):
        with pytest.raises(ConfigError, match="must be steps=N"):
            parse_steps(bad)
    with pytest.raises(ConfigError, match="guidance scale must be ≥ 1"):
        dit.sample(torch.tensor([0]), 0.5, seeded(0))
    with pytest.raises(ConfigError, match="model_index.json"):
        open_dit(dit_dir / "vae")


# Precision.


def level_differences(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.int() - b.int()).abs().float()


@pytest.fixture(scope="module")
def narrow_biggan_dir(tmp_path_factory):
    """BigGAN-deep 128 at 1/8 of its channel width (the package's config, channel_width 16): two forwards, not five."""
    return save_random_biggan(tmp_path_factory.mktemp("biggan-deep-128-narrow"), channel_width=16)


def test_biggan_in_bf16_is_within_a_level_of_fp32(narrow_biggan_dir):
    """bf16 autocast over the fp32 weights (measured: mean 0.12 level, max 1): within mean 1, max 8 levels of 255."""
    labels, imagenet_index_K = torch.tensor([0, 1, 2, 0]), imagenet_class_indices(SYNSETS, num_classes=3, kind="biggan")
    images = {}
    for precision in (FP32, BF16):
        biggan = BigGANGenerator(load_biggan(narrow_biggan_dir), imagenet_index_K, device=CPU, arithmetic=precision,
                                 truncation_convention="scale", truncation_factor=2.0)  # fmt: skip
        images[precision.name] = biggan.sample(labels, 0.5, seeded(1))
    difference = level_differences(images["fp32"], images["bf16"])
    assert 0 < difference.mean() <= 1 and difference.max() <= 8  # > 0: bf16 did run


def test_dit_in_bf16_is_within_a_few_levels_of_fp32(dit_dir):
    """bf16 autocast through the transformer's 2 steps and the VAE (measured: mean 0.9 level, max 6): within mean 2,
    max 16 levels of 255."""
    labels, imagenet_index_K = torch.tensor([0, 1, 2]), imagenet_class_indices(SYNSETS, num_classes=3, kind="diffusers")
    images = {}
    for precision in (FP32, BF16):
        dit = DiTGenerator(load_dit_pipeline(dit_dir), imagenet_index_K, device=CPU, num_inference_steps=2,
                           arithmetic=precision)  # fmt: skip
        images[precision.name] = dit.sample(labels, 4.0, seeded(1))
    difference = level_differences(images["fp32"], images["bf16"])
    assert 0 < difference.mean() <= 2 and difference.max() <= 16


def test_precision_follows_the_device_and_the_set_records_it(narrow_biggan_dir, dit_dir, tmp_path, monkeypatch):
    """fp32 on the CPU unless DISTGAN_PRECISION asks for bf16 (GPUs default to bf16 with TF32); the sampled set's
    provenance says which, through the fitting the sweeps wrap generators in."""
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert sampling_precision(CPU) == FP32 and open_biggan(narrow_biggan_dir).precision == "fp32"
    assert open_dit(dit_dir).precision == "fp32"
    assert Precision(torch.bfloat16, tf32=True).name == "bf16+tf32"  # a GPU's
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert sampling_precision(CPU) == BF16 and BF16.name == "bf16"
    loaded = open_biggan(narrow_biggan_dir)
    manifest = sample_to_shards(loaded, np.array([0, 2]), tuple(SYNSETS), 0.5, seed=0, out_dir=tmp_path / "set",
                                shard_size=2, provenance={}, batch_size=2, encode_workers=1,
                                fit_to=(32, 3))  # fmt: skip
    assert manifest["provenance"]["sampling"]["precision"] == "bf16"
    assert manifest["image_shape_HWC"] == [32, 32, 3]
