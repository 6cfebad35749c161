"""Named sweep recipes: functions returning a full config; variants derive from a base."""

from collections.abc import Callable
from dataclasses import replace

from distgan.config import GeneratorConfig, SweepConfig
from distgan.runtime.registry import Registry
from distgan.schema import KNOBS


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
        knob_values=KNOBS["truncation"].defaults,
        # JPEG as ImageNet ships: 3-6x fewer bytes to read each epoch than PNG, and DALI's "mixed" decoder runs on GPU.
        data=replace(base.data, source="image_folder", image_size=256, shard_max_samples=5000, image_format="jpeg"),
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


NYU_D_STEPS_SCHEDULE = "5,4@5000,3@10000,2@20000"  # the NYU study's D:G schedule: 5 → 4 @5k → 3 @10k → 2 @20k


def nyu_mnist() -> SweepConfig:
    """The NYU study (the seeds' GAN-train / GAN-test experiments) on MNIST at its own 28 px, from the official IDX
    files (`--data.path DIR`): a class-conditional DCGAN (Radford et al.: Adam at 2e-4 with β = (0.5, 0.999), the
    non-saturating loss, 64-channel networks, batch 64) trained 25,000 G iterations under the study's D:G schedule
    5 → 4 @5,000 → 3 @10,000 → 2 @20,000, one generator per seed (the gan-test space), each read through IS, FID,
    GAN-train and GAN-test on 10,000 generated images with the study's classifier: ResNet-32, 80 epochs, learning rate
    0.001 at batch 100 (also the GAN-test classifier, trained on the real images). `--gan.arch acgan` is the study's
    ACGAN; `--space gan` tunes around it (docs/gans.md)."""
    base = SweepConfig()
    return replace(
        base,
        name="gan-test-nyu-mnist",
        space="gan-test",
        data=replace(base.data, source="mnist", image_size=28),
        gan=replace(
            base.gan,
            arch="dcgan",
            loss="nonsaturating",
            g_width=64,
            d_width=64,
            lr_d=2e-4,
            lr_g=2e-4,
            beta1=0.5,
            beta2=0.999,
            batch_size=64,
            iterations=25_000,
            d_steps_schedule=NYU_D_STEPS_SCHEDULE,
        ),
        sample=replace(base.sample, num_images=10_000),
        classifier=replace(
            base.classifier, arch="resnet32", epochs=80, batch_size=100, base_lr=0.001, reference_batch_size=100
        ),
        metrics=replace(base.metrics, extractor_epochs=80),
    )


def nyu_cifar10() -> SweepConfig:
    """`nyu_mnist` on CIFAR-10 at 32 px from the official python batches (`--data.path DIR` holding
    cifar-10-batches-py): the same GAN and classifier recipe, with random crops of 4 pixels' padding and horizontal
    flips for the classifier, and FID in the Inception space first (IS in the domain classifier's)."""
    base = nyu_mnist()
    return replace(
        base,
        name="gan-test-nyu-cifar10",
        data=replace(base.data, source="cifar10", image_size=32),
        classifier=replace(base.classifier, crop_padding=4, horizontal_flip=True),
        metrics=replace(base.metrics, extractors=("inception", "domain")),
    )


RECIPES: Registry[Callable[[], SweepConfig]] = Registry("recipe", "--recipe")
RECIPES.add("digits_default", digits_default)
RECIPES.add("digits_quick", digits_quick)
RECIPES.add("ravuri_vinyals_imagenet", ravuri_vinyals_imagenet)
RECIPES.add("nyu_mnist", nyu_mnist)
RECIPES.add("nyu_cifar10", nyu_cifar10)
