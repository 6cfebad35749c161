"""The GAN loop: D steps then a G step per iteration, the D:G ratio following its schedule; any architecture and
objective of `--gan.arch` / `--gan.loss` (docs/gans.md).

Runs on any world size and engine (DDP or DeepSpeed, `train/engine.py`); checkpoints are written atomically with
the config that made them, and a run resumes from its last one exactly. Every iteration's losses are kept on the
device and brought to the host every LOG_EVERY iterations: the loss curves (`losses.csv`).
"""

import csv
import dataclasses
import math
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import trange

from distgan.config import EngineConfig, GanConfig, parse_d_steps_schedule
from distgan.data.sources import ImageSplit
from distgan.data.transforms import to_model_input
from distgan.errors import TrainingError
from distgan.models.gan import GAN_ARCHS, GanSpec, build_networks, write_generator
from distgan.models.gans.ema import GeneratorAverage
from distgan.models.gans.losses import GAN_LOSSES, discriminator_terms, generator_terms, gradient_penalty
from distgan.runtime import distributed
from distgan.runtime.atomic import atomic_path
from distgan.train.checkpoint import load_training_checkpoint, save_training_checkpoint
from distgan.train.engine import build_engine
from distgan.train.schedules import d_steps_at

LOG_EVERY = 100  # iterations between loss checks (each is a host sync and one all-reduce of the window)
# What each loss-curve column is: the loss D or G minimises (the class and penalty terms included), the class
# cross-entropies of AC-GAN, and WGAN-GP's penalty before its weight λ. D's columns are means over the iteration's
# D steps; all are means over the ranks.
CURVE_NAMES = {
    "d_loss": "D loss",
    "g_loss": "G loss",
    "d_class_loss": "D class loss",
    "g_class_loss": "G class loss",
    "gradient_penalty": "D gradient penalty",
}


def resolved_gan(cfg: GanConfig) -> GanConfig:
    """cfg with the fields left to the loss (None) set to its defaults: what training uses and what generator.pt
    records. The config itself keeps None, so that a later `--gan.loss` brings its own defaults."""
    loss = GAN_LOSSES.get_or_raise(cfg.loss)
    return replace(
        cfg,
        d_steps_schedule=loss.d_steps_schedule if cfg.d_steps_schedule is None else cfg.d_steps_schedule,
        beta1=loss.betas[0] if cfg.beta1 is None else cfg.beta1,
        beta2=loss.betas[1] if cfg.beta2 is None else cfg.beta2,
    )


def build_gan(cfg: GanConfig, *, num_classes: int, image_size: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) of cfg.arch, freshly initialised (from torch's global generator)."""
    spec = GanSpec(arch=cfg.arch, latent_dim=cfg.latent_dim, g_width=cfg.g_width, d_width=cfg.d_width, loss=cfg.loss)
    return build_networks(spec, num_classes=num_classes, image_size=image_size, channels=channels)


def save_generator(path: Path, generator: nn.Module, cfg: GanConfig, *, image_size: int, channels: int) -> None:
    """Write generator.pt (models/gan.py's `write_generator`) recording cfg with the loss's defaults filled in."""
    write_generator(path, generator, dataclasses.asdict(resolved_gan(cfg)), image_size=image_size, channels=channels)


def curve_columns(cfg: GanConfig) -> tuple[str, ...]:
    """The loss-curve columns of cfg's architecture and loss (besides `iteration`), in losses.csv's order."""
    return (
        ("d_loss", "g_loss")
        + ("d_class_loss", "g_class_loss") * GAN_ARCHS.get_or_raise(cfg.arch).class_head
        + ("gradient_penalty",) * GAN_LOSSES.get_or_raise(cfg.loss).gradient_penalty
    )


def train_gan(
    cfg: GanConfig,
    real: ImageSplit,
    *,
    engine_cfg: EngineConfig | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """Train a class-conditional GAN on `real`; returns the plain generator (for `biggan`, the moving average of
    its weights) and {num_d_steps, num_g_steps, losses (every LOG_EVERY iterations and the last), loss_curves
    (every iteration: {"iteration": [...], column: [...]})}.

    G and D are two engines (DDP or DeepSpeed). With `checkpoint_dir` and
    `engine_cfg.checkpoint_every_steps` (G iterations), a run resumes from its last checkpoint.
    """
    cfg, engine_cfg = resolved_gan(cfg), engine_cfg or EngineConfig()
    arch, loss = GAN_ARCHS.get_or_raise(cfg.arch), GAN_LOSSES.get_or_raise(cfg.loss)
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
    average = None
    if arch.weight_average:  # checkpointed beside the engines, which it resembles (save/load)
        average = engines["generator_average"] = GeneratorAverage(
            g_engine.module, decay=cfg.ema_decay, start=cfg.ema_start
        )
    schedule = parse_d_steps_schedule(cfg.d_steps_schedule)
    images, labels = to_model_input(real.images_NHWC), torch.as_tensor(real.labels_N)
    rng = torch.Generator().manual_seed(cfg.seed * 1_000_003 + distributed.rank())  # each rank its own batches

    def real_batch():
        idx = torch.randint(0, labels.shape[0], (local_batch,), generator=rng)
        return images[idx].to(device), labels[idx].to(device)

    def fake_inputs(fake_labels=None):
        # Fake classes follow the real class histogram: draw labels of random real images (or take the given).
        if fake_labels is None:
            fake_labels = labels[torch.randint(0, labels.shape[0], (local_batch,), generator=rng)].to(device)
        return torch.randn(local_batch, cfg.latent_dim, generator=rng).to(device), fake_labels

    terms: dict[str, torch.Tensor] = {}  # the last loss call's terms, for the curves (detached there)

    def d_loss_of(d_model, _):
        x_real, y_real = real_batch()
        # Under a gradient penalty the fakes get the real batch's classes (as likely as drawn ones), so that each
        # interpolate x̂ lies between two images of one class, the class D is asked about at x̂.
        z, y_fake = fake_inputs(y_real if loss.gradient_penalty else None)
        with torch.no_grad():
            x_fake = g_engine.module(z, y_fake)
        if arch.separate_real_fake:  # batch norm: real and fake batches are normalised apart (DCGAN's code)
            real_out, fake_out = d_model(x_real, y_real), d_model(x_fake, y_fake)
        else:  # one forward: one all-reduce, one spectral-norm power iteration per step
            out = d_model(torch.cat([x_real, x_fake]), torch.cat([y_real, y_fake]))
            real_out, fake_out = _split_batch(out, local_batch)
        terms.update(discriminator_terms(loss, real_out, fake_out, y_real, y_fake))
        if loss.gradient_penalty:  # on the plain module, also under DDP (losses.gradient_penalty says why)
            alpha = torch.rand(local_batch, generator=rng).to(device)
            terms["gradient_penalty"] = gradient_penalty(d_engine.module, x_real, x_fake, y_real, alpha)
            terms["d_loss"] = terms["d_loss"] + cfg.gradient_penalty_weight * terms["gradient_penalty"]
        return terms["d_loss"]

    def g_loss_of(g_model, _):
        z, y_fake = fake_inputs()
        terms.update(generator_terms(loss, d_engine.module(g_model(z, y_fake), y_fake), y_fake))
        return terms["g_loss"]

    # The window's columns: D's terms, then G's.
    d_columns = [c for c in curve_columns(cfg) if c.startswith("d_") or c == "gradient_penalty"]
    columns = d_columns + [c for c in curve_columns(cfg) if c not in d_columns]
    first_iteration, num_d_steps = 0, 0
    curves: dict[str, list[float]] = {name: [] for name in columns}  # every finished iteration, on the host
    resumed = load_training_checkpoint(checkpoint_dir, engines)
    if resumed is not None:
        position, rank_state = resumed
        first_iteration, num_d_steps, curves = position["iteration"], position["num_d_steps"], position["curves"]
        rng.set_state(rank_state["rng"])
    # This window's losses, one row per iteration, on the device: written without a host sync.
    window = torch.zeros(LOG_EVERY, len(columns), device=device)
    window_start = first_iteration

    def sync_window(end: int) -> None:
        """Bring iterations [window_start, end) to the host (a host sync) and check them."""
        nonlocal window_start
        rows = window[: end - window_start]
        if distributed.is_distributed():
            dist.all_reduce(rows)  # every rank then sees, and refuses, the same values
            rows /= distributed.world_size()
        for offset, row in enumerate(rows.tolist()):
            for name, value in zip(columns, row, strict=True):
                if not math.isfinite(value):
                    raise TrainingError(f"GAN {CURVE_NAMES[name]} is {value} at iteration {window_start + offset}")
                curves[name].append(value)
        bar.set_postfix(d_loss=f"{curves['d_loss'][-1]:.3f}", g_loss=f"{curves['g_loss'][-1]:.3f}", refresh=False)
        window.zero_()
        window_start = end

    bar = trange(
        first_iteration,
        cfg.iterations,
        desc=f"GAN {cfg.arch}",
        unit="it",
        disable=not progress or distributed.rank() != 0,
        mininterval=1 if sys.stderr.isatty() else 30,  # logs, not a terminal, under Ray: few lines
    )
    for iteration in bar:
        # D steps.
        discriminator.requires_grad_(True)
        num_steps, d_sums = d_steps_at(schedule, iteration), 0
        for _ in range(num_steps):
            d_engine.train_step([None], d_loss_of)
            d_sums = d_sums + torch.stack([terms[c].detach() for c in d_columns])
            num_d_steps += 1
        # G step, D frozen: no gradients (nor ZeRO hooks) on D from the G loss.
        discriminator.requires_grad_(False)
        g_engine.train_step([None], g_loss_of)
        g_values = torch.stack([terms[c].detach() for c in columns[len(d_columns) :]])
        window[iteration - window_start] = torch.cat([d_sums / num_steps, g_values])
        if average is not None:
            average.update(g_engine.module, iteration)
        # Log and check: a host sync every LOG_EVERY iterations, before a checkpoint and at the end.
        every = engine_cfg.checkpoint_every_steps
        checkpoint_now = checkpoint_dir is not None and every and (iteration + 1) % every == 0
        if iteration + 1 - window_start == LOG_EVERY or iteration == cfg.iterations - 1 or checkpoint_now:
            sync_window(iteration + 1)
        # Checkpoint.
        if checkpoint_now:
            position = {"iteration": iteration + 1, "num_d_steps": num_d_steps, "curves": curves}
            save_training_checkpoint(
                checkpoint_dir, iteration + 1, engines, position=position, rank_state={"rng": rng.get_state()}
            )
    discriminator.requires_grad_(True)
    info = {
        "num_d_steps": num_d_steps,
        "num_g_steps": cfg.iterations,
        "losses": [
            {"iteration": i} | {name: curves[name][i] for name in curve_columns(cfg)}
            for i in sorted({*range(0, cfg.iterations, LOG_EVERY), cfg.iterations - 1})
        ],
        "loss_curves": {"iteration": list(range(cfg.iterations))} | {name: curves[name] for name in curve_columns(cfg)},
    }
    return (g_engine.module if average is None else average.module), info


def _split_batch(output, num_real: int):
    """D's output over [real, fake] as (real part, fake part); a tuple output (logits, class logits) part by part."""
    if isinstance(output, tuple):
        return tuple(o[:num_real] for o in output), tuple(o[num_real:] for o in output)
    return output[:num_real], output[num_real:]


def write_loss_curves(path: Path, curves: dict[str, list]) -> None:
    """`info["loss_curves"]` of `train_gan` as CSV, atomically: a header (iteration, then the columns of
    `curve_columns`) and a row per iteration, floats with 9 significant digits (float32 round trip)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(curves)
        for row in zip(*curves.values(), strict=True):
            writer.writerow([row[0]] + [f"{value:.9g}" for value in row[1:]])
