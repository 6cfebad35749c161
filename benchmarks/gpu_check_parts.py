"""The parts of benchmarks/gpu_check.py (its docstring says what each proves): one function per part, each taking
the run's `Setup` and filling its `Row`. A part imports what it uses when it runs; it raises `NotHere` when a package
or the hardware it needs is absent and `CheckFailed` when what it checks does not hold."""

import contextlib
import copy
import importlib.util
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
NO_BACKEND_FOR_CPU = "No backend type associated with device type cpu"  # what an NCCL group says to a CPU tensor
CLASS_NAMES = tuple(str(c) for c in range(10))
TARGET_SEC = 15.0  # part 8 on one H200 (issue 14); torch-fidelity's published figure for the job: 146 s on a P100
TORCH_FIDELITY_P100_SEC = 146.0


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
    inception_weights: Path | None  # --inception-weights; None: random calibrated weights, made once
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


def init_world_of_one(backend: str) -> None:
    """A process group of one rank on a free local port (what `distributed.ensure_process_group` makes)."""
    import torch.distributed as dist

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


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


@contextlib.contextmanager
def one_rank_as_two():
    """Run code written for a world of 2 in this world of 1: `distributed.world_size()` says 2, every all_reduce and
    all_gather goes through the real process group (so NCCL still refuses CPU tensors), and an all_gather's second
    slot receives this rank's tensor again. Yields the device type of every collective's tensor."""
    import torch.distributed as dist

    from distgan.runtime import distributed

    seen: list[str] = []
    all_reduce, all_gather = dist.all_reduce, dist.all_gather

    def spy_all_reduce(tensor, *args, **kwargs):
        seen.append(tensor.device.type)
        return all_reduce(tensor, *args, **kwargs)

    def spy_all_gather(tensor_list, tensor, *args, **kwargs):
        seen.append(tensor.device.type)
        work = all_gather(tensor_list[:1], tensor, *args, **kwargs)  # the group has one rank: one slot
        for slot in tensor_list[1:]:
            slot.copy_(tensor_list[0])
        return work

    with patched(dist, all_reduce=spy_all_reduce, all_gather=spy_all_gather):
        with patched(distributed, world_size=lambda: 2):
            yield seen


@contextlib.contextmanager
def strict_fp32():
    """TF32 off for convolutions and matmuls (torch allows it in cuDNN convolutions by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def inception_weights(setup: Setup) -> Path:
    """--inception-weights, or random weights with BatchNorm statistics calibrated on synthetic images (as
    tests/test_metrics_inception.py does: a random network with default statistics maps every image to one point),
    written once per run."""
    if setup.inception_weights is not None:
        return setup.inception_weights
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


def weights_note(setup: Setup) -> str:
    if setup.inception_weights is not None:
        return f"weights {setup.inception_weights.name}"
    return "random calibrated Inception weights (no --inception-weights): FID values show agreement only"


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


# 1. NCCL: the trap, the collective device, a DDP step, the evaluation counts and the extraction gather.


def part_nccl(setup: Setup, row: Row) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from distgan.metrics import extraction
    from distgan.metrics.classification import ClassificationCounts
    from distgan.models.classifiers import build_classifier
    from distgan.runtime import distributed

    device = setup.device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        init_world_of_one("nccl")
        where = distributed.collective_device()
    else:  # gloo registered for the cuda device type alone refuses CPU tensors as NCCL does (tests/collective_job.py)
        init_world_of_one("cuda:gloo")
        with patched(torch.cuda, is_available=lambda: True, device_count=lambda: 1):
            where = distributed.collective_device()
        row.note("rehearsal: gloo for NCCL; the refusal from a gloo group that serves only cuda")
    try:
        dist.all_reduce(torch.ones(1))
        refusal = "no error"
    except RuntimeError as err:
        refusal = str(err)
    check(NO_BACKEND_FOR_CPU in refusal, f"a CPU all_reduce was not refused as expected ({refusal})")
    check(where.type == "cuda" and where.index in (0, None), f"collective_device() is {where}, not this rank's GPU")
    row.figure(f"CPU all_reduce refused; collective_device() {where}")
    if device.type == "cpu":
        dist.destroy_process_group()
        init_world_of_one("gloo")  # what the rest of the rehearsal can run on

    # A DDP step (gradients all-reduced through the group) equals a plain step on the same batch.
    torch.manual_seed(0)
    model = build_classifier("resnet20", 3, 10).to(device)
    plain = copy.deepcopy(model)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    x = torch.randn(setup.sizes.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (setup.sizes.batch,), device=device)
    for net in (ddp, plain):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    drift = max((a - b).abs().max().item() for a, b in zip(model.parameters(), plain.parameters(), strict=True))
    check(math.isfinite(loss.item()) and drift <= 1e-5, f"DDP step differs from a plain one by {drift:.2e}")
    row.figure(f"DDP step: loss {loss.item():.3f}, max Δw vs a plain step {drift:.1e}")

    # Evaluation counts and the extraction gather, called as in a world of 2: their tensors must reach the group on
    # the collective device (NCCL: the GPU), and a sum or gather over this one rank must give back what it holds.
    model.eval()
    counts = ClassificationCounts.empty(10)
    with torch.no_grad():
        counts.update(model(x), y)
    before = counts.scores()
    with one_rank_as_two() as counted:
        counts.all_reduce()
    check(counts.scores() == before and counts.total_K.device.type == "cpu", "the counts changed in the all_reduce")
    rows = [torch.randn(5, 10), torch.randn(3, 10)]
    with one_rank_as_two() as gathered_on:
        gathered = extraction._gather_in_order(torch.arange(8), rows, 10, 2)
    check(torch.equal(gathered, torch.cat(rows).repeat_interleave(2, dim=0)), "the gather mixed up rows")
    on = sorted(set(counted + gathered_on))
    check(on == [where.type if device.type == "cuda" else "cpu"], f"collectives ran on {on}")
    row.figure(f"counts all_reduce + gather: {len(counted) + len(gathered_on)} collectives on {on[0]}")
    row.note("world of 1: counts and gather called as a world of 2 calls them, the 2nd rank's share echoed")
    distributed.shutdown(wait_for_others=True)


# 2. bf16 training on the DDP engine and on DeepSpeed.


def bf16_training(setup: Setup, row: Row, backend: str) -> None:
    from distgan.config import ClassifierConfig, EngineConfig, GanConfig
    from distgan.data.sources import ImageSplit
    from distgan.runtime import distributed
    from distgan.train.classifier import train_classifier
    from distgan.train.gan import train_gan

    if setup.rehearse:
        os.environ[distributed.PRECISION_ENV] = "bf16"  # the GPUs' precision, on the CPU (undone after the part)
        row.note("rehearsal: DISTGAN_PRECISION=bf16 on the CPU")
    device, size = distributed.local_device(), setup.sizes
    chosen = distributed.autocast_dtype(device)
    check(chosen == torch.bfloat16, f"autocast_dtype({device}) is {chosen}, not bfloat16")
    images = synthetic_images(size.train_images, size.image_size, seed=2)
    split = ImageSplit(images, labels_for(len(images)), CLASS_NAMES)
    engine = EngineConfig(backend=backend, zero_stage=1)
    conv_dtypes: dict[str, set] = {"gan": set(), "classifier": set()}
    phase = ["gan"]

    def record(module, inputs, output):
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            conv_dtypes[phase[0]].add(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    start = time.perf_counter()
    try:
        gan_cfg = GanConfig(iterations=2, batch_size=size.batch, g_width=size.gan_width, d_width=size.gan_width,
                            d_steps_schedule="1")  # fmt: skip
        generator, gan_info = train_gan(gan_cfg, split, engine_cfg=engine, progress=False)
        phase[0], epochs = "classifier", []
        classifier_cfg = ClassifierConfig(arch="resnet20", epochs=1, batch_size=size.batch, loader="memory")
        classifier = train_classifier(classifier_cfg, split, num_classes=10, engine_cfg=engine,
                                      on_epoch_end=lambda epoch, logged: epochs.append(logged))  # fmt: skip
        synchronize(device)
    finally:
        hook.remove()
    seconds = time.perf_counter() - start
    distributed.shutdown(wait_for_others=True)  # DeepSpeed's world of 1 (the DDP engine makes none)
    losses = [h[k] for h in gan_info["losses"] for k in ("d_loss", "g_loss")] + [e["train_loss"] for e in epochs]
    weights = {p.dtype for net in (generator, classifier) for p in net.parameters()}
    on = {p.device.type for net in (generator, classifier) for p in net.parameters()}
    check(conv_dtypes["gan"] == {torch.bfloat16}, f"GAN conv outputs {conv_dtypes['gan']}, not bf16 alone")
    check(conv_dtypes["classifier"] == {torch.bfloat16}, f"classifier conv outputs {conv_dtypes['classifier']}")
    check(weights == {torch.float32} and on == {device.type}, f"weights {weights} on {on}, not fp32 on {device}")
    check(all(math.isfinite(v) for v in losses), f"losses {losses}")
    row.figure(f"GAN 2 iterations + classifier epoch in {sec(seconds)}: conv outputs bf16, weights fp32, losses "
               f"D {losses[0]:.3f} G {losses[1]:.3f} classifier {losses[-1]:.3f}")  # fmt: skip


def part_bf16_ddp(setup: Setup, row: Row) -> None:
    require("PIL", "tqdm")  # distgan.config imports distgan.data.sources (Pillow); distgan.train.gan imports tqdm
    bf16_training(setup, row, "ddp")
    row.note("world of 1: the engine steps the bare module (DDP over NCCL: part 1)")


def part_bf16_deepspeed(setup: Setup, row: Row) -> None:
    require("deepspeed", "PIL", "tqdm")
    bf16_training(setup, row, "deepspeed")
    row.note("ZeRO-1, world of 1")


# 3. DALI's mixed decoder against the CPU loader.


def part_dali(setup: Setup, row: Row) -> None:
    require("nvidia.dali", "PIL")
    from distgan.data.dali_pipeline import decoder_placement
    from distgan.data.loader import make_loader
    from distgan.data.sources import ImageSplit
    from distgan.data.writer import ShardOptions, write_array_shards

    _, decoder = decoder_placement()
    check(decoder == ("cpu" if setup.rehearse else "mixed"), f"DALI decodes with {decoder!r} on {setup.device}")
    if setup.rehearse:
        row.note("rehearsal: DALI's cpu decoder in place of mixed")
    size = setup.sizes
    images = synthetic_images(size.dali_images, size.dali_image_size, seed=3)
    split = ImageSplit(images, labels_for(len(images)), CLASS_NAMES)
    for image_format in ("png", "jpeg"):
        shard_dir = setup.work_dir / f"shards-{image_format}"
        options = ShardOptions(image_format=image_format, jpeg_quality=90, num_workers=setup.loader_workers)
        write_array_shards(split, shard_dir, options=options, provenance={})
        decoded, rates = {}, {}
        for backend in ("dali", "pil"):
            loader = make_loader(shard_dir, batch_size=size.batch, train=False, num_workers=setup.loader_workers,
                                 backend=backend)  # fmt: skip
            decoded[backend] = torch.cat([batch["images"].cpu() for batch in loader.epoch(0)])  # also the warm-up
            start, count = time.perf_counter(), 0
            for batch in loader.epoch(1):
                count += len(batch["labels"])
            synchronize(setup.device)
            rates[backend] = per_sec(count, time.perf_counter() - start)
            check(count == len(images), f"{backend} read {count} of {len(images)} images")
        check(decoded["dali"].shape == decoded["pil"].shape, f"shapes {decoded['dali'].shape} {decoded['pil'].shape}")
        levels = ((decoded["dali"] - decoded["pil"]) * 127.5).abs()  # [-1, 1] back to pixel levels
        worst, mean = levels.max().item(), levels.mean().item()
        if image_format == "png":  # lossless: the same pixels (up to the normalisation's float rounding)
            check(worst < 1e-3, f"PNG pixels differ by up to {worst:.3g} levels")
        else:  # nvJPEG / the hardware decoder and libjpeg-turbo may round differently; a wrong decode is far off
            check(mean <= 2.0, f"JPEG pixels differ by {mean:.2f} levels on average (max {worst:.0f})")
        row.figure(f"{image_format}: DALI {decoder} {rates['dali']}, PIL {rates['pil']}, max Δ {worst:.3g} levels")
    row.note(f"{size.dali_images} images {size.dali_image_size}×{size.dali_image_size}, batch {size.batch}, "
             f"{setup.loader_workers} threads / workers each")  # fmt: skip


# 4. distgan's Inception extraction and statistics against pytorch-fid's network.


def pytorch_fid_network(weights: Path) -> tuple[nn.Module | None, str]:
    """pytorch-fid 0.3.0's InceptionV3 loading `weights` (its download replaced by this file), or (None, why not).
    Its blocks subclass torchvision's; where torchvision does not import, torch-fidelity's identically named blocks
    stand in (as in tests/test_metrics_inception.py)."""
    from distgan.peers import import_isolated

    if not have("pytorch_fid"):
        return None, "pytorch-fid is not installed"
    try:
        import torchvision  # noqa: F401

        fakes = {}
    except Exception:  # absent, or built for another torch
        if not have("torch_fidelity"):
            return None, "pytorch-fid needs torchvision or torch-fidelity's blocks"
        import types

        fidelity = import_isolated("torch_fidelity", "feature_extractor_inceptionv3", {})
        torchvision = types.ModuleType("torchvision")
        torchvision.__version__ = "0.21.0"
        torchvision.models = types.SimpleNamespace(
            inception=types.SimpleNamespace(
                InceptionA=fidelity.InceptionA, InceptionC=fidelity.InceptionC, InceptionE=fidelity.InceptionE_1
            ),
            inception_v3=lambda **kwargs: fidelity.FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
            ),
        )
        fakes = {"torchvision": torchvision}
    pytorch_fid = import_isolated("pytorch_fid", "inception", fakes)
    pytorch_fid.load_state_dict_from_url = lambda url, progress=True: torch.load(weights, map_location="cpu")
    return pytorch_fid.InceptionV3([3]).eval(), "torchvision" if not fakes else "torch-fidelity's blocks"


def pytorch_fid_statistics(network: nn.Module, images: np.ndarray, batch: int, device: torch.device):
    """μ, Σ as pytorch-fid computes them: float [0, 1] NCHW batches to the device, pool features kept on the host
    (`get_activations`), then np.mean and np.cov (`calculate_activation_statistics`)."""
    activations = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.as_tensor(images[start : start + batch]).permute(0, 3, 1, 2).float() / 255
            activations.append(network(x.to(device))[0].squeeze(3).squeeze(2).cpu().numpy())
    features = np.concatenate(activations)
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def part_inception(setup: Setup, row: Row) -> None:
    from distgan.metrics.extraction import ImageSource, extract
    from distgan.metrics.fid import frechet_distance

    device, num, batch = setup.device, setup.sizes.fid_images, 50  # pytorch-fid's default batch, for both
    row.note(weights_note(setup))
    ours = inception_extractor(setup)
    theirs, how = pytorch_fid_network(inception_weights(setup))
    sets = [synthetic_images(num, 32, seed=4, noise=8), synthetic_images(num, 32, seed=5, noise=48)]

    def ours_stats(images):
        return extract(ours, ImageSource.from_array(images), batch_size=batch, keep_logits=False).stats

    warm_up = sets[0][: min(batch, num // 2)]
    ours_stats(warm_up)  # (cuDNN, the allocator, lazily loaded kernels)
    start = time.perf_counter()
    ours_mu_sigma = [ours_stats(images).mean_and_covariance() for images in sets]
    ours_sec = time.perf_counter() - start
    fid_ours = frechet_distance(*ours_mu_sigma[0], *ours_mu_sigma[1])
    row.figure(f"distgan {per_sec(2 * num, ours_sec)}")
    if theirs is None:
        row.note(f"not compared: {how}; distgan's throughput alone (batch {batch}, FID(A, B) {fid_ours:.6g})")
        return
    theirs = theirs.to(device)
    # The same network: features of one batch in strict fp32 (tests/test_metrics_inception.py's tolerance).
    with strict_fp32(), torch.no_grad():
        x = torch.as_tensor(sets[0][: min(8, num)]).to(device)
        our_feats = ours.model.to(device).features(ours.prepare(x))
        their_feats = theirs(x.permute(0, 3, 1, 2).float() / 255)[0].flatten(1)
    check(our_feats.std(dim=0).mean() > 1e-2 * our_feats.abs().mean(), "features do not vary: a vacuous comparison")
    feature_diff = ((our_feats - their_feats).abs().max() / their_feats.abs().max()).item()
    check(feature_diff <= 1e-4, f"fp32 features differ by {feature_diff:.2e} of their scale (> 1e-4)")
    # Throughput and statistics at torch's default precision (TF32 convolutions on GPUs), in both.
    pytorch_fid_statistics(theirs, warm_up, batch, device)
    start = time.perf_counter()
    their_mu_sigma = [pytorch_fid_statistics(theirs, images, batch, device) for images in sets]
    theirs_sec = time.perf_counter() - start
    fid_theirs = frechet_distance(*their_mu_sigma[0], *their_mu_sigma[1])
    delta = abs(fid_ours - fid_theirs)
    check(delta <= 1e-3 * fid_theirs, f"ΔFID {delta:.3g} > 1e-3 × FID {fid_theirs:.6g}")
    row.figure(f"pytorch-fid {per_sec(2 * num, theirs_sec)} (distgan/pytorch-fid speed ×{theirs_sec / ours_sec:.2f})")
    row.figure(f"fp32 features: max Δ {feature_diff:.1e} of scale; FID(A, B) {fid_ours:.6g}, ΔFID {delta:.1e}")
    row.note(f"2 × {num} images 32×32, batch {batch}; pytorch-fid with {how}")


# 5. The fused (compiled) extractor against eager.


def part_fused(setup: Setup, row: Row) -> None:
    from distgan.metrics.extraction import ImageSource, extract, make_step

    device, batch = setup.device, setup.sizes.extract_batch
    if setup.rehearse:  # compiling InceptionV3 takes minutes on a CPU
        extractor = small_cnn_extractor()
        row.note("rehearsal: distgan's small CNN compiled for the CPU in place of InceptionV3 on CUDA")
    else:
        extractor = inception_extractor(setup)
        row.note(weights_note(setup))
        if not any(shutil.which(cc) for cc in (os.environ.get("CC", "cc"), "gcc", "clang")):
            row.note("no C compiler on PATH (Triton builds its kernel launcher with one)")
    images = synthetic_images(setup.sizes.fused_images, 32, seed=6)
    outputs, seconds, first_call = {}, {}, {}
    for fused in (False, True):  # eager first: make_step(fused=True) turns the model channels-last in place
        step = make_step(extractor, device, fused)
        run = dict(batch_size=batch, keep_logits=True, fused=fused, step=step)
        start = time.perf_counter()
        extract(extractor, ImageSource.from_array(images[:batch]), **run)  # compiles (fused), warms up (eager)
        first_call[fused] = time.perf_counter() - start
        start = time.perf_counter()
        outputs[fused] = extract(extractor, ImageSource.from_array(images), keep_features=True, **run)
        synchronize(device)
        seconds[fused] = time.perf_counter() - start
    eager, fused = outputs[False].feats_ND, outputs[True].feats_ND
    diff = ((fused - eager).abs().max() / eager.abs().max()).item()
    check(diff <= 1e-2, f"fused features differ from eager by {diff:.2e} of their scale (> 1e-2)")
    num = len(images)
    row.figure(f"eager {per_sec(num, seconds[False])}, fused {per_sec(num, seconds[True])} "
               f"(×{seconds[False] / seconds[True]:.2f}); compile {sec(first_call[True])}; "
               f"features: max Δ {diff:.1e} of scale")  # fmt: skip
    row.note(f"{num} images 32×32, batch {batch}; both at torch's default precision")


# 6. The NVML sampler while a classifier trains.


def part_sampler(setup: Setup, row: Row) -> None:
    from distgan.models.classifiers import build_classifier
    from distgan.profiling import UtilisationSampler, summarise

    device, size = setup.device, setup.sizes
    if device.type == "cuda":
        require("pynvml")  # nvidia-ml-py
    torch.manual_seed(0)
    model = build_classifier("resnet20", 3, 10).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(size.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (size.batch,), device=device)
    steps = 0
    with UtilisationSampler(interval_s=0.25) as sampler:
        end = time.monotonic() + size.sampler_seconds
        while time.monotonic() < end:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if steps % 10 == 0:
                synchronize(device)  # keep the host within a few steps of the GPU
        synchronize(device)
    samples = sampler.samples()
    summary = summarise(samples)
    if device.type == "cuda":
        check(sampler.kind == "gpu", f"the sampler fell back to {sampler.kind} rows (NVML did not start: see the log)")
        gpu = [s for s in samples if s.kind == "gpu"]
        check(len(gpu) >= 3, f"{len(gpu)} GPU rows in {size.sampler_seconds:.0f} s")
        check(max(s.util_pct for s in gpu) > 0, "no GPU utilisation recorded while a classifier trained")
        check(summary["gpu_mem_peak_mib"] > 0, "no GPU memory in use recorded")
        row.figure(f"{len(gpu)} rows ({', '.join(sorted({s.device for s in gpu}))}), {steps} steps: util mean "
                   f"{summary['gpu_util_mean']:.0f} %, p50 {summary['gpu_util_p50']:.0f} %, memory peak "
                   f"{summary['gpu_mem_peak_mib']:,.0f} MiB, power {summary['gpu_power_mean_w']:.0f} W")  # fmt: skip
    else:
        cpu = [s for s in samples if s.kind == "cpu"]
        check(sampler.kind == "cpu" and cpu, f"the sampler recorded {len(cpu)} CPU rows")
        row.figure(f"{len(cpu)} rows, {steps} steps: CPU util mean {summary['cpu_util_mean']:.0f} % of one core, "
                   f"RSS peak {summary['rss_peak_mib']:,.0f} MiB")  # fmt: skip
        row.note("rehearsal: no NVML here, so the sampler's CPU fallback rows")


# 7. A quick sweep with one GPU per worker.


def run_command(command: list[str], timeout_s: float, env: dict) -> tuple[int, str, float]:
    """(exit code, stdout + stderr, seconds) of a command in a session of its own. Past its timeout (or the part's)
    it is stopped with its process group, SIGTERM then SIGKILL; its own timeout fails the part."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except BaseException as err:
        output = ""
        for stop, grace_s in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, stop)
            try:
                output, _ = process.communicate(timeout=grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
        if isinstance(err, subprocess.TimeoutExpired):
            raise CheckFailed(f"still running after {timeout_s:.0f} s: {output[-300:]}") from None
        raise
    return process.returncode, output, time.perf_counter() - start


def part_sweep(setup: Setup, row: Row) -> None:
    require("ray")
    from distgan.profiling import UtilisationSampler, summarise

    # A trial's workers each need a whole GPU (launch.check_gpus_per_worker): on one GPU, one worker per trial.
    workers = 1 if setup.rehearse else max(1, min(2, torch.cuda.device_count()))
    command = [sys.executable, "tune/sweep.py", "--space", "replacement", "--quick", "--gpus-per-worker", "1",
               "--workers-per-trial", str(workers), "--results-dir", str(setup.work_dir / "sweep")]  # fmt: skip
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = os.environ | {"PYTHONPATH": path, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    if setup.rehearse:
        code, output, seconds = run_command([*command, "--help"], 120, env)
        check(code == 0, f"tune/sweep.py --help: exit {code}: {output[-300:]}")
        raise NotHere(f"rehearsal: the sweep needs a GPU; its command line parsed (--help, {seconds:.0f} s)")
    with UtilisationSampler(interval_s=1.0) as sampler:
        code, output, seconds = run_command(command, setup.sweep_timeout_s, env)
    check(code == 0, f"exit {code}: {output[-300:]}")
    summary = summarise(sampler.samples())
    own = re.search(r"Sweep wall time: (\d+) s", output)
    check(summary.get("gpu_util_mean", 0) > 0, "the GPU stayed idle during a --gpus-per-worker 1 sweep")
    row.figure(f"{seconds:.0f} s (the sweep's own count: {own.group(1) if own else '?'} s); GPU util mean "
               f"{summary['gpu_util_mean']:.0f} %, p95 {summary['gpu_util_p95']:.0f} %, idle "
               f"{summary['gpu_idle_frac']:.0%}; memory peak {summary['gpu_mem_peak_mib']:,.0f} MiB")  # fmt: skip
    row.note(f"--workers-per-trial {workers}")


# 8. IS + FID + KID + precision/recall of 50,000 images through the metrics door.


@contextlib.contextmanager
def timed_calls(module, names: tuple[str, ...]):
    """Wall seconds spent in each of `module`'s functions `names` (looked up by name at the call), summed."""
    seconds = dict.fromkeys(names, 0.0)

    def timing(name, function):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - start

        return call

    with patched(module, **{name: timing(name, getattr(module, name)) for name in names}):
        yield seconds


def part_metrics(setup: Setup, row: Row) -> None:
    from distgan.metrics import engine
    from distgan.metrics.extraction import ImageSource

    num, batch = setup.sizes.metrics_images, setup.sizes.extract_batch
    if setup.rehearse:  # FID's eigendecompositions at d = 2048 take seconds each on a small CPU
        extractor = small_cnn_extractor()
        row.note("rehearsal: distgan's small CNN (d = 128) in place of InceptionV3")
    else:
        extractor = inception_extractor(setup)
        row.note(weights_note(setup))
    fake = engine.ImageSet(ImageSource.from_array(synthetic_images(num, 32, seed=8, noise=48)))
    real = engine.ImageSet(ImageSource.from_array(synthetic_images(num, 32, seed=9, noise=16)),
                           digest=f"gpu-check-synthetic-{num}")  # fmt: skip
    options = engine.MetricOptions(batch_size=batch, cache_dir=str(setup.work_dir / "stats-cache"),
                                   kid_subset_size=min(1000, num))  # fmt: skip

    def compute(metrics: list[str]) -> tuple[dict, float]:
        start = time.perf_counter()
        scores = engine.compute(real, fake, metrics=metrics, extractor=extractor, options=options)
        return scores, time.perf_counter() - start

    cold, cold_sec = compute(["is", "fid"])  # the real statistics computed and cached
    cached, cached_sec = compute(["is", "fid"])  # only the fake images extracted
    check(cold["real_stats_cache_hit"] is False and cached["real_stats_cache_hit"] is True, "the cache was not used")
    check(abs(cached["fid"] - cold["fid"]) <= 1e-4 * abs(cold["fid"]), f"FID {cached['fid']} vs {cold['fid']}")
    parts = ("extract", "frechet_distance", "inception_score", "kernel_inception_distance",
             "precision_recall_density_coverage")  # fmt: skip
    with timed_calls(engine, parts) as spent:
        full, full_sec = compute(["is", "fid", "kid", "pr"])
    scores = [full[k] for k in ("inception_score_mean", "fid", "kid_mean", "precision", "recall")]
    check(all(math.isfinite(v) for v in scores), f"scores {scores}")
    if setup.rehearse or num != 50_000:
        verdict = "the target is for 50,000 images on one H200"
    else:
        verdict = f"target ≤ {TARGET_SEC:.0f} s {'met' if full_sec <= TARGET_SEC else 'NOT met'}"
    row.figure(f"IS+FID+KID+PR {sec(full_sec)}: {verdict} (torch-fidelity, P100: {TORCH_FIDELITY_P100_SEC:.0f} s)")
    kid, pr = spent["kernel_inception_distance"], spent["precision_recall_density_coverage"]
    row.figure(f"extraction 2 × {num:,} {sec(spent['extract'])} ({per_sec(2 * num, spent['extract'])}), "
               f"KID {sec(kid)}, PR {sec(pr)}, FID {sec(spent['frechet_distance'])}, "
               f"IS {sec(spent['inception_score'])}")  # fmt: skip
    row.figure(f"IS+FID against cached statistics {sec(cached_sec)} (filling the cache: {sec(cold_sec)})")
    row.note(f"batch {batch}, eager; distgan caches statistics only, so KID and PR extract the real set as well; "
             "KID and PR run on the host CPU")  # fmt: skip


@dataclass(frozen=True)
class Part:
    key: str  # what --parts selects: "2" selects 2a and 2b
    name: str
    run: Callable[[Setup, Row], None]


PARTS = (
    Part("1", "1 NCCL: DDP step, evaluation, gather", part_nccl),
    Part("2a", "2a bf16 GAN + classifier, DDP engine", part_bf16_ddp),
    Part("2b", "2b bf16 GAN + classifier, DeepSpeed", part_bf16_deepspeed),
    Part("3", "3 DALI mixed vs CPU decoding", part_dali),
    Part("4", "4 Inception vs pytorch-fid", part_inception),
    Part("5", "5 fused vs eager extractor", part_fused),
    Part("6", "6 NVML sampler during training", part_sampler),
    Part("7", "7 quick sweep, 1 GPU per worker", part_sweep),
    Part("8", "8 IS+FID+KID+PR of 50k images", part_metrics),
)
