"""Parts 2a, 2b and 6 of benchmarks/gpu_check.py: bf16 training on the DDP engine and on DeepSpeed, and the NVML
sampler while a classifier trains."""

import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from .common import CLASS_NAMES, Row, Setup, check, labels_for, require, sec, synchronize, synthetic_images

# 2. bf16 training on the DDP engine (2a) and on DeepSpeed (2b).


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
