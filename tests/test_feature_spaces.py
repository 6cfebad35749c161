"""The dinov2 and clip feature spaces (distgan/metrics/vision_transformers.py) and CMMD (distgan/metrics/cmmd.py).

No weights can be fetched here, so the networks are small variants with seeded random weights (DINOv2 ViT-S/14,
open_clip ViT-S-32, a tiny OpenAI-layout CLIP). Preprocessing is compared with the authors' own on PIL images:
dgm-eval's torchvision Compose for DINOv2, cmmd's crop + PIL resize and open_clip's transform for CLIP.
"""

import hashlib
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.spatial.distance import cdist

from distgan.data.sources import load_split
from distgan.errors import ConfigError
from distgan.metrics.cmmd import cmmd
from distgan.metrics.extraction import ImageSource, extract
from distgan.metrics.extractors import build_extractor
from distgan.metrics.vision_transformers import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    _import_vision_package,
    dinov2_pos_embed,
    prepare_clip,
    prepare_dinov2,
    random_clip_extractor,
    random_dinov2_extractor,
)

# PIL resizes in fixed point; the tensor emulation may differ by its rounding: 1 level, on under 0.5 % of values.
MAX_LEVELS, MAX_FRACTION_DIFFERING = 1, 0.005


@pytest.fixture(scope="module")
def rgb_images() -> np.ndarray:
    """Six 32×32 RGB images: three digits in colour, three of noise (bicubic overshoot, clipped by PIL)."""
    digits = load_split("digits", "train").images_NHWC[:3]  # (3, 8, 8, 1)
    digits = np.asarray([np.asarray(Image.fromarray(d[..., 0]).resize((32, 32))) for d in digits])
    tinted = np.stack([digits, 255 - digits, digits // 2], axis=-1).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    return np.concatenate([tinted, noise])


@pytest.fixture(scope="module")
def dinov2():
    return random_dinov2_extractor("vits14", seed=0)


@pytest.fixture(scope="module")
def clip():
    return random_clip_extractor("ViT-S-32", seed=0)


def _levels_apart(ours: torch.Tensor, reference: torch.Tensor, std: tuple) -> torch.Tensor:
    """|Δ| of two normalised inputs in 0..255 levels."""
    return (ours - reference).abs() * torch.tensor(std).view(1, 3, 1, 1) * 255


def _assert_like_pil(ours: torch.Tensor, reference: torch.Tensor, std: tuple) -> None:
    assert ours.shape == reference.shape and ours.dtype == torch.float32
    levels = _levels_apart(ours, reference, std)
    assert float(levels.max()) <= MAX_LEVELS + 1e-3, float(levels.max())
    assert float((levels > 0.5).float().mean()) <= MAX_FRACTION_DIFFERING


def test_dinov2_preprocessing_is_dgm_evals(rgb_images):
    """dgm-eval's DINOv2Encoder.transform on PIL images: Resize((224, 224), BICUBIC), ToTensor, ImageNet Normalize."""
    transforms = _import_vision_package("torchvision", "dinov2").transforms
    dgm_eval = transforms.Compose([
        transforms.Resize((224, 224), transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])  # fmt: skip
    reference = torch.stack([dgm_eval(Image.fromarray(image)) for image in rgb_images])
    ours = prepare_dinov2(torch.as_tensor(rgb_images))
    _assert_like_pil(ours, reference, IMAGENET_STD)
    pixels = ours * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6  # PIL clips to 0..255
    grey = torch.as_tensor(rgb_images[:2, :, :, :1])
    assert torch.equal(prepare_dinov2(grey), prepare_dinov2(grey.expand(-1, -1, -1, 3)))


def test_clip_preprocessing_is_cmmds_and_clips(rgb_images):
    """cmmd's io_util (centre square by (side − l) // 2, PIL BICUBIC resize, /255) on a non-square image, then CLIP
    normalisation; and open_clip's own eval transform (Resize shortest side, CenterCrop) on square ones."""
    wide = np.concatenate([rgb_images[3], rgb_images[4][:, :13]], axis=1)  # 32 × 45
    left = (45 - 32) // 2
    cropped = Image.fromarray(wide).crop((left, 0, left + 32, 32)).resize((48, 48), Image.BICUBIC)
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    reference = (torch.as_tensor(np.asarray(cropped)).permute(2, 0, 1) / 255 - mean) / std
    _assert_like_pil(prepare_clip(torch.as_tensor(wide[None]), 48), reference[None], CLIP_STD)

    open_clip = _import_vision_package("open_clip", "clip")
    clip_transform = open_clip.transform.image_transform(48, is_train=False, mean=CLIP_MEAN, std=CLIP_STD)
    reference = torch.stack([clip_transform(Image.fromarray(image)) for image in rgb_images])
    _assert_like_pil(prepare_clip(torch.as_tensor(rgb_images), 48), reference, CLIP_STD)


@pytest.fixture(scope="module")
def first_features(dinov2, clip, rgb_images) -> dict[str, torch.Tensor]:
    """Each space's features of the first two images, computed once."""
    with torch.inference_mode():
        return {e.name: e.model.features(e.prepare(torch.as_tensor(rgb_images[:2]))) for e in (dinov2, clip)}


def test_features_shapes_no_logits_and_seeded_weights(dinov2, clip, rgb_images, first_features):
    """(Determinism: the extraction test computes the same features again, bit-equal; a second DINOv2 instance loaded
    with the same weights gives bit-equal ones, test_dinov2_weights_by_path.)"""
    for extractor, width in ((dinov2, 384), (clip, 384)):
        assert extractor.prepare(torch.as_tensor(rgb_images[:2])).shape == (2, 3, 224, 224)
        feats = first_features[extractor.name]
        assert feats.shape == (2, width) == (2, extractor.num_features)
        assert extractor.model.head(feats).shape == (2, 0) and not extractor.has_logits
        assert float((feats[0] - feats[1]).abs().max()) > 1e-3, "random features must still depend on the image"
    torch.testing.assert_close(first_features["clip"].norm(dim=1), torch.ones(2))  # CMMD's embedding: L2-normalised
    # Seeded random weights (random_dinov2_extractor seeds the same way).
    same, other = (random_clip_extractor("ViT-S-32", seed=seed).model.state_dict() for seed in (0, 1))
    assert all(torch.equal(same[key], value) for key, value in clip.model.state_dict().items())
    assert not torch.equal(other["backbone.proj"], same["backbone.proj"])
    identity = {"extractor": "dinov2", "weights_sha256": "random-vits14-seed0", "resize": "pil-bicubic-224"}
    assert dinov2.cache_identity().items() >= identity.items()


def test_extraction_in_both_spaces(dinov2, clip, rgb_images, first_features):
    """Through the engine's extraction: finite (N, D) statistics, kept features bit-equal to the network's (computed
    again), no logits."""
    for extractor in (dinov2, clip):
        result = extract(extractor, ImageSource.from_array(rgb_images[:2]), batch_size=2, keep_features=True,
                         local=True)  # fmt: skip
        assert result.stats.count == 2
        mean_D, cov_DD = result.stats.mean_and_covariance()
        assert mean_D.shape == (extractor.num_features,) and cov_DD.shape == (extractor.num_features,) * 2
        assert np.isfinite(mean_D).all() and np.isfinite(cov_DD).all() and np.trace(cov_DD) > 0
        assert result.logits_NK.shape == (2, 0)
        assert torch.equal(result.feats_ND, first_features[extractor.name])


def test_dinov2_weights_by_path(dinov2, rgb_images, first_features, tmp_path):
    """timm's layout round-trips; Meta's released layout (a 37×37 position grid for 518 px, a mask token) loads with
    its positions resampled for 224 px. (Checked once outside this suite against Meta's own DINOv2 ViT-S/B code with
    random weights and a 37×37 grid: features equal, max |Δ| = 0.)"""
    state = dinov2.model.backbone.state_dict()
    timm_file = tmp_path / "dinov2_vits14_timm.pth"
    torch.save(state, timm_file)
    loaded = build_extractor("dinov2", timm_file)
    with torch.inference_mode():
        assert torch.equal(loaded.model.features(dinov2.prepare(torch.as_tensor(rgb_images[:2]))),
                           first_features["dinov2"])  # fmt: skip
    assert loaded.weights_sha256 == hashlib.sha256(timm_file.read_bytes()).hexdigest()
    assert loaded.cache_identity()["weights_sha256"] == loaded.weights_sha256

    constant_grid = torch.full((1, 1 + 37 * 37, 384), 0.25)
    meta_layout = {**state, "pos_embed": constant_grid, "mask_token": torch.zeros(1, 384)}
    meta_file = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(meta_layout, meta_file)
    pos_embed = build_extractor("dinov2", meta_file).model.backbone.pos_embed
    assert pos_embed.shape == (1, 1 + 16 * 16, 384)
    torch.testing.assert_close(pos_embed, torch.full_like(pos_embed, 0.25))  # bicubic weights sum to one
    assert torch.equal(dinov2_pos_embed(state["pos_embed"], 16), state["pos_embed"])


def _tiny_openai_clip():
    """A small CLIP in OpenAI's layout (open_clip's CLIP class, QuickGELU), and a TorchScript archive of it as
    OpenAI ships theirs (without open_clip's attn_mask buffer, an attribute in OpenAI's code)."""
    open_clip = _import_vision_package("open_clip", "clip")
    vision = open_clip.model.CLIPVisionCfg(layers=2, width=128, patch_size=8, image_size=32)
    text = open_clip.model.CLIPTextCfg(context_length=8, vocab_size=64, width=64, heads=1, layers=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.model.CLIP(48, vision_cfg=vision, text_cfg=text, quick_gelu=True).eval()
    model._buffers.pop("attn_mask")
    scripted = torch.jit.trace_module(model, {"encode_image": torch.zeros(1, 3, 32, 32)}, check_trace=False)
    return model, scripted


def test_clip_weights_by_path(rgb_images, tmp_path):
    """A state dict and a TorchScript archive load, the architecture read from them; features are open_clip's
    encode_image, L2-normalised; the file's sha256 is recorded."""
    model, scripted = _tiny_openai_clip()
    state_file, archive = tmp_path / "clip_state.pt", tmp_path / "clip_scripted.pt"
    torch.save(model.state_dict(), state_file)
    torch.jit.save(scripted, archive)
    x = prepare_clip(torch.as_tensor(rgb_images[:3]), 32)
    with torch.inference_mode():
        expected = F.normalize(model.encode_image(x), dim=-1)
        for weights in (state_file, archive):
            loaded = build_extractor("clip", weights)
            assert loaded.prepare(torch.as_tensor(rgb_images[:3])).shape == (3, 3, 32, 32)
            torch.testing.assert_close(loaded.model.features(x), expected, rtol=0, atol=1e-6)
            assert loaded.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["dinov2", "clip"])
def test_missing_corrupt_or_foreign_weights_name_the_file(name, tmp_path):
    with pytest.raises(ConfigError, match=f"--extractor {name} needs a weights file"):
        build_extractor(name, None)
    missing = tmp_path / "absent.pth"
    with pytest.raises(ConfigError, match=re.escape(f"weights file {missing} does not exist")):
        build_extractor(name, missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 not a checkpoint" * 8)
    with pytest.raises(ConfigError, match=re.escape(f"cannot read weights file {corrupt}")):
        build_extractor(name, corrupt)
    foreign = tmp_path / "foreign.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 100), "visual.proj": torch.zeros(4, 4)}, foreign)
    with pytest.raises(ConfigError, match=re.escape(str(foreign))):
        build_extractor(name, foreign)


def _cmmd_transcribed(x: np.ndarray, y: np.ndarray) -> float:
    """google-research/cmmd distance.py's formula, written out independently: 1000 (E k_xx + E k_yy − 2 E k_xy),
    k = exp(−‖a − b‖² / (2 · 10²)), every pair of each matrix in the means (diagonals included)."""
    kernel = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * 10**2))  # noqa: E731
    return 1000 * (kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean())


def _unit_rows(num: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Rows like CLIP embeddings: Gaussian, shifted along the first axis, L2-normalised."""
    rows = np.random.default_rng(seed).normal(size=(num, dim))
    rows[:, 0] += shift
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_cmmd_equals_the_papers_formula():
    x, y = _unit_rows(70, 32, seed=1), _unit_rows(45, 32, seed=2, shift=0.5)  # sets of different sizes
    expected = _cmmd_transcribed(x, y)
    assert expected > 0
    assert cmmd(x, y) == pytest.approx(expected, rel=1e-10)
    assert cmmd(x, y, block_rows=7) == pytest.approx(expected, rel=1e-10)  # row blocks change nothing
    assert cmmd(torch.as_tensor(x, dtype=torch.float32), y) == pytest.approx(expected, rel=1e-5)  # float32 input


def test_cmmd_is_zero_on_one_set_and_grows_with_a_shift():
    x = _unit_rows(60, 16, seed=3)
    assert cmmd(x, x) == 0.0
    values = [cmmd(x, _unit_rows(60, 16, seed=4, shift=shift)) for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values
    y = _unit_rows(60, 16, seed=4, shift=1.0)
    assert cmmd(x, y) == pytest.approx(cmmd(y, x), rel=1e-12)
    with pytest.raises(ValueError, match="one width"):
        cmmd(x, _unit_rows(5, 8, seed=5))
