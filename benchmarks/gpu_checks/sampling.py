"""Part 9 of benchmarks/gpu_check.py: a sweep's sampling job (`distgan.jobs.sampling.sampling_worker`, through the
sharded sampler `generators.sampling.sample_to_shards`) with the generator on the GPU, for the distgan kind
(distgan's SN-projection generator) and the biggan kind (BigGAN-deep from pytorch-pretrained-biggan), both at random
weights, 1,000 ImageNet classes. Checked: the set is complete and readable, its images vary, the generator's weights
were on the device, and sampling the same job again gives the same shards byte for byte (the sampler's promise:
the set depends on the seed, not on the run)."""

import time
from pathlib import Path

import numpy as np
import torch

from .common import NotHere, Row, Setup, check, have, per_sec, require, sec, synchronize

NUM_CLASSES = 1000  # ImageNet's: the biggan kind maps the classes by synset


def _converge_spectral_norms(model: torch.nn.Module, iterations: int = 30) -> None:
    """Each spectral norm's (u, v) power-iterated to the top singular pair, as a trained checkpoint holds them: at
    their random start σ = uᵀWv is near 0 in eval mode and BigGAN's activations overflow to NaN within three blocks
    (tests/model_builders.py does the same for the generator tests)."""
    for module in model.modules():
        if hasattr(module, "weight_orig"):
            weight, u = module.weight_orig.flatten(1), module.weight_u
            for _ in range(iterations):
                v = torch.nn.functional.normalize(weight.T @ u, dim=0)
                u = torch.nn.functional.normalize(weight @ v, dim=0)
            module.weight_u.copy_(u)
            module.weight_v.copy_(v)


def random_biggan(root: Path, channel_width: int) -> Path:
    """BigGAN-deep 128 (the package's config; `channel_width` 128 is the published model's) at random weights, in the
    package's layout (config.json + pytorch_model.bin)."""
    import pytorch_pretrained_biggan as package

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        model = package.BigGAN(package.BigGANConfig(channel_width=channel_width))
        torch.nn.init.ones_(model.generator.bn.weight)  # left uninitialised by the package
        torch.nn.init.zeros_(model.generator.bn.bias)
        _converge_spectral_norms(model)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(model.config.to_json_string())
    torch.save(model.state_dict(), root / "pytorch_model.bin")
    return root


def random_distgan(path: Path, width: int, image_size: int = 32) -> Path:
    """distgan's SN-projection generator (the sweep's default GAN) at random weights, as generator.pt."""
    from distgan.config import GanConfig
    from distgan.train.gan import build_gan, save_generator

    cfg = GanConfig(latent_dim=128, g_width=width, d_width=width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator, _ = build_gan(cfg, num_classes=NUM_CLASSES, image_size=image_size, channels=3)
    save_generator(path, generator, cfg, image_size=image_size, channels=3)
    return path


def sample_set(kind: str, weights: Path, out_dir: Path, num_images: int, batch: int, image_size: int) -> float:
    """Seconds to sample `num_images` of `kind` into out_dir through the sweep's sampling job (a world of 1)."""
    from distgan.config import GeneratorConfig, SampleConfig
    from distgan.generators.imagenet_synsets import IMAGENET_SYNSETS
    from distgan.jobs.sampling import SamplingJob, sampling_worker

    job = SamplingJob(generator=GeneratorConfig(kind=kind, weights=weights), sample=SampleConfig(batch_size=batch),
                      knob_value=0.5, labels_N=np.arange(num_images) % NUM_CLASSES, class_names=IMAGENET_SYNSETS,
                      image_size=image_size, channels=3, shard_size=max(1, num_images // 2), out_dir=out_dir,
                      provenance={"kind": "synthetic", "gpu_check": kind})  # fmt: skip
    start = time.perf_counter()
    sampling_worker(job)
    return time.perf_counter() - start


def check_set(out_dir: Path, num_images: int, image_size: int) -> list[str]:
    """The shards' digests, after checking the set reads back whole, at its size, with varied images."""
    from distgan.data.manifest import read_manifest
    from distgan.data.shards import read_shards

    manifest = read_manifest(out_dir)
    split = read_shards(out_dir)
    check(manifest["num_samples"] == num_images == len(split.labels_N), f"{manifest['num_samples']} samples")
    check(split.images_NHWC.shape[1:] == (image_size, image_size, 3), f"images {split.images_NHWC.shape}")
    distinct = len(np.unique(split.images_NHWC.reshape(num_images, -1), axis=0))
    check(distinct > 1, "every image is the same (a dead generator: NaN or saturated outputs)")
    return [shard["sha256"] for shard in manifest["shards"]]


def part_sampling(setup: Setup, row: Row) -> None:
    require("PIL", "tqdm", "webdataset")
    rehearse, device = setup.rehearse, setup.device
    num_images, batch = (8, 4) if rehearse else (2000, 250)
    kinds = {"distgan": (8 if rehearse else 64, 32), "biggan": (8 if rehearse else 128, 64)}  # width, set's image size
    missing = []
    for kind, (width, image_size) in kinds.items():
        if kind == "biggan" and not have("pytorch_pretrained_biggan"):
            missing.append("biggan: pytorch_pretrained_biggan not importable here")
            continue
        weights = (random_biggan if kind == "biggan" else random_distgan)(setup.work_dir / f"{kind}-weights", width)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = sample_set(kind, weights, setup.work_dir / f"{kind}-set", num_images, batch, image_size)
        synchronize(device)
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
        check(device.type == "cpu" or peak_mib > 1, f"{kind}: nothing was allocated on {device}")
        first = check_set(setup.work_dir / f"{kind}-set", num_images, image_size)
        sample_set(kind, weights, setup.work_dir / f"{kind}-again", num_images, batch, image_size)
        again = check_set(setup.work_dir / f"{kind}-again", num_images, image_size)
        check(again == first, f"{kind}: the same job sampled again gave other shards (not a function of its seed)")
        memory = f", peak GPU memory {peak_mib:,.0f} MiB" if device.type == "cuda" else ""
        row.figure(f"{kind} (width {width}): {num_images:,} images in {sec(seconds)} "
                   f"({per_sec(num_images, seconds)}{memory}); resampled set identical")  # fmt: skip
    if len(missing) == len(kinds):
        raise NotHere("; ".join(missing))
    row.note(f"random weights, {NUM_CLASSES} classes, batch {batch}, τ = 0.5; images fitted to the set's size "
             "and PNG-encoded as a sweep's synthetic set" + "".join(f"; {m}" for m in missing))  # fmt: skip
