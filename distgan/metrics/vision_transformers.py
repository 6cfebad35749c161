"""Two feature spaces without class logits: `dinov2`, where FD_DINOv2 is the Fréchet distance (Stein et al. 2023,
"Exposing flaws of generative model evaluation metrics", dgm-eval), and `clip`, where CMMD is measured (Jayasumana
et al. 2024, "Rethinking FID", google-research/cmmd; cmmd.py). `head` gives (N, 0): no Inception Score there.

Weights come from a local file, recorded by sha256; nothing is downloaded, and the architecture is read from the
file. `random_dinov2_extractor` and `random_clip_extractor` build the same networks with seeded random weights, for
tests and benchmarks on machines where no weights can be fetched.

Networks: DINOv2 ViTs are timm's `vit_*_patch14_dinov2` (the authors' ViT: LayerScale, qkv bias, final LayerNorm),
built for 224×224 input; the feature is the normed CLS token, as the DINOv2 hub model returns and dgm-eval uses.
CLIP is open_clip's vision tower of an OpenAI CLIP state dict; the feature is the image embedding, L2-normalised.

Preprocessing, as the authors define it on PIL images:
- dinov2 (dgm-eval's DINOv2Encoder): torchvision Resize((224, 224), BICUBIC), ToTensor, ImageNet mean/std;
- clip (cmmd's io_util and embedding): centre crop to a square, PIL BICUBIC resize to the model's input size, /255,
  CLIP mean/std (for square images the same as CLIP's own Resize + CenterCrop).
Both resizes are PIL's bicubic (a = −0.5, antialiased, uint8 after each pass), reproduced here on tensors: torch's
antialiased bicubic (PIL's kernel), horizontal pass then vertical, each rounded half up and clipped to 0..255 as
PIL does. Within 1 level of PIL (its fixed-point rounding), on under 0.5 % of values (tests/test_feature_spaces.py).
"""

import math
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distgan.errors import ConfigError
from distgan.metrics.extractor_registry import EXTRACTORS, Extractor
from distgan.runtime.hashing import sha256_of
from distgan.runtime.optional import import_torchvision

INSTALL = ("pip install --no-deps torchvision==0.28.0 timm==1.0.29 open-clip-torch==3.3.0 ftfy==6.3.1 "
           "wcwidth==0.9.4 regex==2026.11.19 (make run and make test do)")  # fmt: skip
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
DINOV2_INPUT_SIZE, DINOV2_PATCH = 224, 14
# dgm-eval's names → timm's model, CLS width, depth. Stein et al. report FD_DINOv2 with ViT-L/14.
DINOV2_ARCHS = {
    "vits14": ("vit_small_patch14_dinov2", 384, 12),
    "vitb14": ("vit_base_patch14_dinov2", 768, 12),
    "vitl14": ("vit_large_patch14_dinov2", 1024, 24),
    "vitg14": ("vit_giant_patch14_dinov2", 1536, 40),
}
DEFAULT_DINOV2_ARCH = "vitl14"
DEFAULT_CLIP_MODEL = "ViT-L-14-336"  # CMMD's CLIP
# DINOv2's hub models resample their 37×37 position embeddings with this offset (facebookresearch/dino#8).
DINOV2_INTERPOLATE_OFFSET = 0.1


class FeatureNetwork(nn.Module):
    """A backbone whose output is the feature vector, as an extractor's model: features (N, D), no logits."""

    def __init__(self, backbone: nn.Module, num_features: int, *, l2_normalise: bool):
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.l2_normalise = l2_normalise

    def features(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x_NCHW)
        return F.normalize(feats, dim=-1) if self.l2_normalise else feats

    def head(self, feats_ND: torch.Tensor) -> torch.Tensor:
        return feats_ND.new_zeros(len(feats_ND), 0)


def pil_bicubic_resize(x_NCHW: torch.Tensor, size: int) -> torch.Tensor:
    """float (N, C, H, W) with values 0..255 → (N, C, size, size), as PIL's `resize((size, size), BICUBIC)` on uint8."""
    height, width = x_NCHW.shape[2:]
    if (height, width) == (size, size):
        return x_NCHW
    x = _to_uint8_levels(F.interpolate(x_NCHW, size=(height, size), mode="bicubic", antialias=True))
    return _to_uint8_levels(F.interpolate(x, size=(size, size), mode="bicubic", antialias=True))


def _to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    # PIL rounds half up (torch.round: half to even, which differs on the many exact ties of simple scale factors).
    return x.add_(0.5).floor_().clamp_(0, 255)


def _to_float_rgb(images_NHWC: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) → float32 (N, 3, H, W), values 0..255; grey images repeated to three channels."""
    x = images_NHWC.permute(0, 3, 1, 2).float()
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _normalise(x_NCHW: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """0..255 → (x/255 − mean) / std per channel, as torchvision's ToTensor then Normalize."""
    mean_C = torch.tensor(mean, device=x_NCHW.device).view(1, 3, 1, 1)
    std_C = torch.tensor(std, device=x_NCHW.device).view(1, 3, 1, 1)
    return (x_NCHW / 255 - mean_C) / std_C


def prepare_dinov2(images_NHWC: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) → DINOv2's float input (N, 3, 224, 224), as dgm-eval: stretched to 224×224, not cropped."""
    x = pil_bicubic_resize(_to_float_rgb(images_NHWC), DINOV2_INPUT_SIZE)
    return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def prepare_clip(images_NHWC: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W, C) → CLIP's float input (N, 3, size, size): centre square (cmmd's offsets), resize, normalise."""
    x = _to_float_rgb(images_NHWC)
    height, width = x.shape[2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    x = pil_bicubic_resize(x[:, :, top : top + side, left : left + side], size)
    return _normalise(x, CLIP_MEAN, CLIP_STD)


def _import_vision_package(package: str, extractor: str):
    """timm or open_clip, importable beside this torch; ConfigError saying how to install them otherwise."""
    try:
        import_torchvision()
        return __import__(package)
    except ImportError as error:
        raise ConfigError(f"--extractor {extractor} needs {package} ({error}): {INSTALL}") from error


def read_state_dict(weights: Path | None, extractor: str) -> dict[str, torch.Tensor]:
    """A weights file's state dict: a `torch.save`d dict of tensors, or a TorchScript archive (OpenAI's CLIP files)."""
    if weights is None:
        raise ConfigError(f"--extractor {extractor} needs a weights file: none is downloaded (see docs/metrics.md)")
    if not Path(weights).is_file():
        raise ConfigError(f"--extractor {extractor}: weights file {weights} does not exist")
    try:
        if _is_torchscript(Path(weights)):
            state = torch.jit.load(weights, map_location="cpu").state_dict()
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"--extractor {extractor}: cannot read weights file {weights} ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ConfigError(f"--extractor {extractor}: {weights} does not hold a state dict of tensors")
    return dict(state)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip with constants.pkl in its one top folder (torch.serialization's test)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1] == "constants.pkl" for name in archive.namelist())


def _load_strict(model: nn.Module, state: dict, extractor: str, weights: Path, *, assign: bool = False) -> None:
    try:
        model.load_state_dict(state, assign=assign)
    except RuntimeError as error:
        raise ConfigError(f"--extractor {extractor}: {weights} does not fit the network: {error}") from None


def _extractor(name: str, network: FeatureNetwork, prepare, weights_sha256: str, resize: str) -> Extractor:
    return Extractor(name, network.eval(), prepare, weights_sha256, resize, has_logits=False)


# DINOv2.


def _timm_dinov2(arch: str) -> nn.Module:
    timm = _import_vision_package("timm", "dinov2")
    # LayerScale starts at 1 as in DINOv2's hub constructor (timm's 1e-5 would leave random blocks mute).
    return timm.create_model(DINOV2_ARCHS[arch][0], pretrained=False, img_size=DINOV2_INPUT_SIZE, num_classes=0,
                             init_values=1.0)  # fmt: skip


def _dinov2_network(backbone: nn.Module, arch: str) -> FeatureNetwork:
    return FeatureNetwork(backbone, DINOV2_ARCHS[arch][1], l2_normalise=False)


def _dinov2_extractor(network: FeatureNetwork, weights_sha256: str) -> Extractor:
    return _extractor("dinov2", network, prepare_dinov2, weights_sha256, f"pil-bicubic-{DINOV2_INPUT_SIZE}")


def dinov2_pos_embed(pos_embed_1TD: torch.Tensor, grid: int) -> torch.Tensor:
    """Position embeddings for a grid × grid patch input, as DINOv2's `interpolate_pos_encoding` computes them on
    every forward (bicubic, scale factor (grid + 0.1) / M, no antialiasing); here once, at load."""
    class_pos, patch_pos = pos_embed_1TD[:, :1], pos_embed_1TD[:, 1:]
    side, dim = math.isqrt(patch_pos.shape[1]), patch_pos.shape[2]
    if side == grid:
        return pos_embed_1TD
    scale = (grid + DINOV2_INTERPOLATE_OFFSET) / side
    patch_grid = patch_pos.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patch_grid = F.interpolate(patch_grid, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    assert patch_grid.shape[-2:] == (grid, grid), patch_grid.shape
    return torch.cat([class_pos, patch_grid.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def _dinov2_arch(state: dict, weights: Path) -> str:
    """The architecture a DINOv2 backbone state dict (Meta's `dinov2_vit*14_pretrain.pth` or timm's) holds."""
    if "register_tokens" in state or "reg_token" in state:
        raise ConfigError(f"--extractor dinov2: {weights} is a DINOv2 with registers, which is not supported")
    if "cls_token" not in state:
        raise ConfigError(f"--extractor dinov2: {weights} is not a DINOv2 backbone state dict (no cls_token)")
    width = state["cls_token"].shape[-1]
    depth = sum(1 for key in state if key.startswith("blocks.") and key.endswith(".norm1.weight"))
    for arch, (_, arch_width, arch_depth) in DINOV2_ARCHS.items():
        if (arch_width, arch_depth) == (width, depth):
            return arch
    raise ConfigError(f"--extractor dinov2: {weights} holds a ViT of width {width} and depth {depth}, not one of "
                      f"DINOv2's (S, B, L, g: {[spec[1:] for spec in DINOV2_ARCHS.values()]})")  # fmt: skip


def _timm_dinov2_state(state: dict) -> dict:
    """Meta's key names → timm's (SwiGLU's w12/w3 in ViT-g); the mask token (training only) dropped; position
    embeddings for 224×224 input."""
    renamed = {key.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2."): v for key, v in state.items()}
    renamed.pop("mask_token", None)
    renamed["pos_embed"] = dinov2_pos_embed(renamed["pos_embed"], DINOV2_INPUT_SIZE // DINOV2_PATCH)
    return renamed


@EXTRACTORS.register("dinov2")
def dinov2_extractor(weights: Path | None, cache_dir: Path | None) -> Extractor:
    """DINOv2 (ViT-S/B/L/g 14, read from the file) from a backbone state dict; `cache_dir` is unused."""
    state = read_state_dict(weights, "dinov2")
    arch = _dinov2_arch(state, Path(weights))
    with torch.device("meta"):  # no random initialisation to overwrite (seconds for ViT-L): the file's tensors are used
        backbone = _timm_dinov2(arch)
    _load_strict(backbone, _timm_dinov2_state(state), "dinov2", Path(weights), assign=True)
    assert not any(tensor.is_meta for tensor in [*backbone.parameters(), *backbone.buffers()])
    return _dinov2_extractor(_dinov2_network(backbone.float(), arch), sha256_of(Path(weights)))


def random_dinov2_extractor(arch: str = DEFAULT_DINOV2_ARCH, seed: int = 0) -> Extractor:
    """The same network with timm's random initialisation drawn from `seed` (tests, benchmarks): not a metric."""
    if arch not in DINOV2_ARCHS:
        raise ConfigError(f"DINOv2 architecture must be one of {sorted(DINOV2_ARCHS)} (got {arch!r})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = _timm_dinov2(arch)
    return _dinov2_extractor(_dinov2_network(backbone, arch), f"random-{arch}-seed{seed}")


# CLIP.


def _clip_extractor(visual: nn.Module, weights_sha256: str) -> Extractor:
    size = visual.image_size[0]  # square: (height, width)
    network = FeatureNetwork(visual, visual.output_dim, l2_normalise=True)
    return _extractor("clip", network, lambda images: prepare_clip(images, size), weights_sha256, f"pil-bicubic-{size}")


@EXTRACTORS.register("clip")
def clip_extractor(weights: Path | None, cache_dir: Path | None) -> Extractor:
    """CLIP's vision tower from an OpenAI CLIP file (`ViT-L-14-336px.pt`, TorchScript, or its state dict; the
    architecture is read from it, as open_clip does); `cache_dir` is unused."""
    open_clip = _import_vision_package("open_clip", "clip")
    state = read_state_dict(weights, "clip")
    state = {key: v for key, v in state.items() if key not in ("input_resolution", "context_length", "vocab_size")}
    if "visual.proj" not in state:  # OpenAI's ResNet CLIPs have an attention pool instead
        raise ConfigError(f"--extractor clip: {weights} is not an OpenAI CLIP ViT state dict (no visual.proj)")
    try:
        model = open_clip.model.build_model_from_openai_state_dict(dict(state), cast_dtype=None)
    except (KeyError, RuntimeError) as error:
        raise ConfigError(f"--extractor clip: {weights} is not an OpenAI CLIP ViT state dict ({error})") from None
    # open_clip's builder loads through float16 (OpenAI's files are float16); load again at the file's precision.
    _load_strict(model.float(), state, "clip", Path(weights))
    return _clip_extractor(model.visual, sha256_of(Path(weights)))


def random_clip_extractor(model_name: str = DEFAULT_CLIP_MODEL, seed: int = 0) -> Extractor:
    """An open_clip architecture (QuickGELU, as OpenAI's) with random weights drawn from `seed` (tests, benchmarks)."""
    open_clip = _import_vision_package("open_clip", "clip")
    if model_name not in open_clip.list_models():
        raise ConfigError(f"CLIP model must be one of open_clip's architectures (got {model_name!r})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(model_name, force_quick_gelu=True)
    return _clip_extractor(model.visual, f"random-{model_name}-seed{seed}")
