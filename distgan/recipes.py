"""Named sweep recipes (STYLE §3): functions returning a full config; variants derive from a base."""

from collections.abc import Callable
from dataclasses import replace

from distgan.config import PAPER_TRUNCATIONS, GeneratorConfig, SweepConfig
from distgan.runtime.registry import Registry


def digits_default() -> SweepConfig:
    """The main job offline: digits at 16×16, ResNet-20, the paper's 8 truncations (wall times: docs/quickstart.md)."""
    return SweepConfig()


def digits_quick() -> SweepConfig:
    """A smoke sweep for tests: 2 truncations, short GAN and classifier runs."""
    base = digits_default()
    return replace(
        base,
        name="replacement-digits-quick",
        knob_values=(0.5, 1.0),
        gan=replace(base.gan, iterations=300),
        classifier=replace(base.classifier, epochs=4),
        metrics=replace(base.metrics, extractor_epochs=4, kid_subsets=10),
    )


def ravuri_vinyals_imagenet() -> SweepConfig:
    """Ravuri & Vinyals (2019), Table 1: BigGAN-deep 256 on ImageNet, a ResNet-50 per truncation trained for 90 epochs
    at a global batch of 8,192 (Goyal et al.: LR 0.1 × 8192/256, warmup from 0 over 5 epochs, ÷10 at 30/60/80), the
    paper's 8 truncations in its convention, IS and FID on 50,000 images. Give the data and the weights by path:
    `--data.path IMAGENET_DIR --generator.weights BIGGAN_DEEP_256_DIR` (docs/reproduce.md: a Slurm cluster, costs)."""
    base = SweepConfig()
    return replace(
        base,
        name="replacement-imagenet-biggan-deep-256",
        workers_per_trial=8,
        cpus_per_worker=8,
        gpus_per_worker=1,
        knob_values=PAPER_TRUNCATIONS,
        data=replace(base.data, source="image_folder", image_size=256, shard_max_samples=5000),
        generator=GeneratorConfig(kind="biggan"),
        sample=replace(base.sample, truncation_convention="resample", batch_size=256),
        classifier=replace(
            base.classifier,
            arch="resnet50",
            epochs=90,
            batch_size=8192,
            base_lr=0.1,
            reference_batch_size=256,
            warmup_fraction=5 / 90,
            weight_decay=1e-4,
            horizontal_flip=True,
            crop_padding=32,
            loader="stream",
        ),  # fmt: skip
        metrics=replace(base.metrics, extractors=("inception", "domain"), num_images=50_000, extractor_epochs=90),
    )


RECIPES: Registry[Callable[[], SweepConfig]] = Registry("recipe", "--recipe")
RECIPES.add("digits_default", digits_default)
RECIPES.add("digits_quick", digits_quick)
RECIPES.add("ravuri_vinyals_imagenet", ravuri_vinyals_imagenet)
