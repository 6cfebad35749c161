"""The GAN loop: D steps then a G step per iteration, the D:G ratio following its schedule.

Runs on any world size (DDP through `distributed.parallelize`); checkpoints are written atomically
with the config that made them.
"""

import math
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import trange

from distgan.config import EngineConfig, GanConfig, parse_d_steps_schedule
from distgan.data.sources import ImageSplit
from distgan.data.transforms import to_model_input
from distgan.errors import TrainingError
from distgan.models.gan import ConditionalGenerator, ProjectionDiscriminator
from distgan.runtime import distributed
from distgan.train.checkpoint import load_training_checkpoint, save_training_checkpoint
from distgan.train.engine import build_engine
from distgan.train.schedules import d_steps_at

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


def train_gan(
    cfg: GanConfig,
    real: ImageSplit,
    *,
    engine_cfg: EngineConfig | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> tuple[ConditionalGenerator, dict]:
    """Train a class-conditional GAN on `real`; returns the plain generator and loss/step counts.

    G and D are two engines (DDP or DeepSpeed). With `checkpoint_dir` and
    `engine_cfg.checkpoint_every_steps` (G iterations), a run resumes from its last checkpoint.
    """
    engine_cfg = engine_cfg or EngineConfig()
    device = distributed.select_device()
    distributed.seed_everything(cfg.seed)
    _, height, _, channels = real.images_NHWC.shape
    generator, discriminator = build_gan(cfg, num_classes=real.num_classes, image_size=height, channels=channels)
    local_batch = max(1, cfg.batch_size // distributed.world_size())  # batch_size is global
    betas = (cfg.beta1, cfg.beta2)
    engines = {
        name: build_engine(
            module,
            torch.optim.Adam(module.parameters(), lr=lr, betas=betas),
            None,
            replace(engine_cfg, grad_accum_steps=1),  # a GAN step is one batch; accumulation would change D:G
            device=device,
            micro_batch_size=local_batch,
        )
        for name, module, lr in (("generator", generator, cfg.lr_g), ("discriminator", discriminator, cfg.lr_d))
    }
    g_engine, d_engine = engines["generator"], engines["discriminator"]
    schedule = parse_d_steps_schedule(cfg.d_steps_schedule)
    images, labels = to_model_input(real.images_NHWC), torch.as_tensor(real.labels_N)
    rng = torch.Generator().manual_seed(cfg.seed * 1_000_003 + distributed.rank())  # each rank its own batches

    def real_batch():
        idx = torch.randint(0, labels.shape[0], (local_batch,), generator=rng)
        return images[idx].to(device), labels[idx].to(device)

    def fake_inputs():
        # Fake classes follow the real class histogram: draw labels of random real images.
        fake_labels = labels[torch.randint(0, labels.shape[0], (local_batch,), generator=rng)].to(device)
        return torch.randn(local_batch, cfg.latent_dim, generator=rng).to(device), fake_labels

    def d_loss_of(d_model, _):
        x_real, y_real = real_batch()
        z, y_fake = fake_inputs()
        with torch.no_grad():
            x_fake = g_engine.module(z, y_fake)
        # One D forward over real and fake: one all-reduce, one spectral-norm power iteration per step.
        logits = d_model(torch.cat([x_real, x_fake]), torch.cat([y_real, y_fake]))
        return d_loss_fn(cfg.loss, logits[:local_batch], logits[local_batch:])

    def g_loss_of(g_model, _):
        z, y_fake = fake_inputs()
        return g_loss_fn(cfg.loss, d_engine.module(g_model(z, y_fake), y_fake))

    first_iteration, num_d_steps, history = 0, 0, []
    resumed = load_training_checkpoint(checkpoint_dir, engines)
    if resumed is not None:
        position, rank_state = resumed
        first_iteration, num_d_steps, history = position["iteration"], position["num_d_steps"], position["history"]
        rng.set_state(rank_state["rng"])
    bar = trange(
        first_iteration,
        cfg.iterations,
        desc="GAN",
        unit="it",
        disable=not progress or distributed.rank() != 0,
        mininterval=1 if sys.stderr.isatty() else 30,  # logs, not a terminal, under Ray: few lines
    )
    for iteration in bar:
        # D steps.
        discriminator.requires_grad_(True)
        for _ in range(d_steps_at(schedule, iteration)):
            d_loss = d_engine.train_step([None], d_loss_of)
            num_d_steps += 1
        # G step, D frozen: no gradients (nor ZeRO hooks) on D from the G loss.
        discriminator.requires_grad_(False)
        g_loss = g_engine.train_step([None], g_loss_of)
        # Log and check: a host sync every LOG_EVERY iterations.
        if iteration % LOG_EVERY == 0 or iteration == cfg.iterations - 1:
            d_value, g_value = d_loss.item(), g_loss.item()
            for name, value in (("D", d_value), ("G", g_value)):
                if not math.isfinite(value):
                    raise TrainingError(f"GAN {name} loss is {value} at iteration {iteration}")
            history.append({"iteration": iteration, "d_loss": d_value, "g_loss": g_value})
        # Checkpoint.
        every = engine_cfg.checkpoint_every_steps
        if checkpoint_dir is not None and every and (iteration + 1) % every == 0:
            position = {"iteration": iteration + 1, "num_d_steps": num_d_steps, "history": history}
            save_training_checkpoint(
                checkpoint_dir, iteration + 1, engines, position=position, rank_state={"rng": rng.get_state()}
            )
    discriminator.requires_grad_(True)
    return g_engine.module, {"num_d_steps": num_d_steps, "num_g_steps": cfg.iterations, "losses": history}
