"""The GAN loop: D steps then a G step per iteration, the D:G ratio following its schedule.

Runs on any world size (DDP through `distributed.parallelize`); checkpoints are written atomically
with the config that made them.
"""

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import trange

from distgan.config import GanConfig, to_dict
from distgan.data.sources import ImageSplit
from distgan.data.transforms import to_model_input
from distgan.models.gan import ConditionalGenerator, ProjectionDiscriminator
from distgan.train import distributed
from distgan.train.checkpoint import save_atomic
from distgan.train.classifier import TrainingError
from distgan.train.schedules import d_steps_at, parse_d_steps_schedule

LOG_EVERY = 100  # iterations between loss checks (each is a host sync)


def d_loss_fn(loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_fn(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean() if loss == "hinge" else F.softplus(-fake_logits).mean()


def build_gan(cfg: GanConfig, *, num_classes: int, image_size: int, channels: int):
    generator = ConditionalGenerator(
        latent_dim=cfg.latent_dim,
        num_classes=num_classes,
        image_size=image_size,
        channels=channels,
        base_width=cfg.g_width,
    )
    discriminator = ProjectionDiscriminator(
        num_classes=num_classes, image_size=image_size, channels=channels, base_width=cfg.d_width
    )
    return generator, discriminator


def train_gan(cfg: GanConfig, real: ImageSplit, *, progress: bool = True) -> tuple[ConditionalGenerator, dict]:
    """Train a class-conditional GAN on `real`; returns the plain generator and loss/step counts."""
    device = distributed.select_device()
    distributed.seed_everything(cfg.seed)
    _, height, _, channels = real.images_NHWC.shape
    generator, discriminator = build_gan(cfg, num_classes=real.num_classes, image_size=height, channels=channels)
    generator, discriminator = (
        distributed.parallelize(generator, device),
        distributed.parallelize(discriminator, device),
    )
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=betas)
    schedule = parse_d_steps_schedule(cfg.d_steps_schedule)
    images, labels = to_model_input(real.images_NHWC), torch.as_tensor(real.labels_N)
    rng = torch.Generator().manual_seed(cfg.seed * 1_000_003 + distributed.rank())  # each rank its own batches
    latent_dim = distributed.unwrap(generator).latent_dim
    local_batch = max(1, cfg.batch_size // distributed.world_size())  # batch_size is global

    def real_batch():
        idx = torch.randint(0, labels.shape[0], (local_batch,), generator=rng)
        return images[idx].to(device), labels[idx].to(device)

    def fake_batch():
        # Fake classes follow the real class histogram: draw labels of random real images.
        fake_labels = labels[torch.randint(0, labels.shape[0], (local_batch,), generator=rng)].to(device)
        z = torch.randn(local_batch, latent_dim, generator=rng).to(device)
        return generator(z, fake_labels), fake_labels

    num_d_steps, history = 0, []
    bar = trange(
        cfg.iterations,
        desc="GAN",
        unit="it",
        disable=not progress or distributed.rank() != 0,
        mininterval=1 if sys.stderr.isatty() else 30,
    )  # logs, not a terminal, under Ray: few lines
    for iteration in bar:
        # D steps.
        for _ in range(d_steps_at(schedule, iteration)):
            x_real, y_real = real_batch()
            with torch.no_grad():
                x_fake, y_fake = fake_batch()
            d_loss = d_loss_fn(cfg.loss, discriminator(x_real, y_real), discriminator(x_fake, y_fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            num_d_steps += 1
        # G step.
        x_fake, y_fake = fake_batch()
        g_loss = g_loss_fn(cfg.loss, discriminator(x_fake, y_fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        # Log and check: a host sync every LOG_EVERY iterations.
        if iteration % LOG_EVERY == 0 or iteration == cfg.iterations - 1:
            d_value, g_value = d_loss.item(), g_loss.item()
            for name, value in (("D", d_value), ("G", g_value)):
                if not math.isfinite(value):
                    raise TrainingError(f"GAN {name} loss is {value} at iteration {iteration}")
            history.append({"iteration": iteration, "d_loss": d_value, "g_loss": g_value})
    return distributed.unwrap(generator), {"num_d_steps": num_d_steps, "num_g_steps": cfg.iterations, "losses": history}


def save_generator(path: Path, generator: ConditionalGenerator, cfg: GanConfig, *, image_size: int, channels: int):
    """Write the generator with the config and shapes that rebuild it, atomically."""
    payload = {
        "gan_config": to_dict(cfg),
        "num_classes": generator.num_classes,
        "image_size": image_size,
        "channels": channels,
        "state_dict": generator.state_dict(),
    }
    save_atomic(payload, path)


def load_generator(path: Path) -> ConditionalGenerator:
    """Rebuild a generator saved by `save_generator`."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    cfg = GanConfig(**payload["gan_config"])
    generator, _ = build_gan(
        cfg, num_classes=payload["num_classes"], image_size=payload["image_size"], channels=payload["channels"]
    )
    generator.load_state_dict(payload["state_dict"])
    return generator
