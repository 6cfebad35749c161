"""Our FID InceptionV3 against the peers' networks, with one set of BatchNorm-calibrated random weights.

References, run from their installed sources (torchvision cannot be imported beside this torch, see conftest):
- torch-fidelity 0.4.0's `FeatureExtractorInceptionV3` (pure torch, the same 2015-12-05 TF graph and weights file):
  features and logits on 299×299 input (its own TF1-style resize differs from pytorch-fid's, so no resize there);
- pytorch-fid 0.3.0's `InceptionV3` (its forward, resize, [−1, 1] scaling and FIDInceptionA/C/E_1/E_2 forwards),
  with torchvision's block constructors supplied by torch-fidelity's identically named blocks: pool features on
  32×32 CIFAR images, i.e. through the resize.

A random Inception maps all images to nearly one point; the BatchNorm statistics are calibrated on real images
first and the test asserts that features vary across images before comparing (the issue's warning).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from distgan.errors import DataError
from distgan.metrics.inception import FIDInceptionV3, load_inception
from distgan.peers import import_isolated, pytorch_fid_inception

CIFAR = REPO.parent / "shared" / "data" / "cifar10_lossless_subset-test.npz"


def _assert_close_to_scale(ours: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-4) -> None:
    """Max |difference| ≤ tol × max |reference|: float32 summation order differs between the implementations
    (random weights give activations in the hundreds, so an absolute 1e-4 would test float32 rounding)."""
    scale = theirs.abs().max().item()
    assert (ours - theirs).abs().max().item() <= tol * scale, f"differ by more than {tol} of the scale {scale:.3g}"


@pytest.fixture(scope="module")
def images_NHWC() -> np.ndarray:
    if not CIFAR.is_file():
        pytest.skip(f"{CIFAR} missing (see ../shared/data/README.md)")
    with np.load(CIFAR) as data:
        return data["x"][:24]


@pytest.fixture(scope="module")
def calibrated_weights(images_NHWC, tmp_path_factory) -> Path:
    """Random weights whose BatchNorm running statistics come from 16 real CIFAR images."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for start in (8, 16):
            model.trunk(model.prepare(torch.as_tensor(images_NHWC[start : start + 8])))
    path = tmp_path_factory.mktemp("inception") / "random-calibrated.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def ours(calibrated_weights):
    return load_inception(calibrated_weights)[0]


def test_features_and_logits_equal_torch_fidelity(ours, calibrated_weights, images_NHWC):
    fidelity = import_isolated("torch_fidelity", "feature_extractor_inceptionv3", {})
    theirs = fidelity.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits"], feature_extractor_weights_path=str(calibrated_weights)
    )
    rng = np.random.default_rng(0)
    # 299×299 uint8 images: CIFAR upsampled by pixel repetition (10×, cropped), a real image at the network's size.
    big = np.repeat(np.repeat(images_NHWC[:4], 10, axis=1), 10, axis=2)[:, :299, :299]
    big = np.concatenate([big, rng.integers(0, 256, size=(1, 299, 299, 3), dtype=np.uint8)])
    with torch.no_grad():
        their_feats, their_logits = theirs(torch.as_tensor(big).permute(0, 3, 1, 2).contiguous())
        # torch-fidelity scales by (x − 128)/128 (the TF graph's op); feed our trunk the same input.
        x = (torch.as_tensor(big).permute(0, 3, 1, 2).float() - 128) / 128
        our_feats = ours.trunk(x)
        our_logits = ours.head(our_feats)
    assert our_feats.std(dim=0).mean() > 1e-2 * our_feats.abs().mean(), "features do not vary: vacuous comparison"
    _assert_close_to_scale(our_feats, their_feats)
    _assert_close_to_scale(our_logits, their_logits)


def test_pool_features_equal_pytorch_fid_through_the_resize(ours, calibrated_weights, images_NHWC):
    theirs = pytorch_fid_inception(calibrated_weights)
    batch = torch.as_tensor(images_NHWC[:6])
    with torch.no_grad():
        their_feats = theirs(batch.permute(0, 3, 1, 2).float() / 255)[0].flatten(1)
        our_feats = ours.features(ours.prepare(batch))
    assert our_feats.std(dim=0).mean() > 1e-2 * our_feats.abs().mean(), "features do not vary: vacuous comparison"
    _assert_close_to_scale(our_feats, their_feats)


def test_weights_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_inception(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(DataError, match="bad.pth: not the FID InceptionV3"):
        load_inception(bad)
