"""The GAN objectives that `--gan.loss` names, each with the D:G schedule and Adam betas it trains with unless the
config sets them, and the loss terms of a discriminator's outputs (with AC-GAN's class terms when it has a class
head). Formulas on logits D(x) ∈ ℝ; x̃ = G(z, y)."""

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from distgan.runtime.registry import Registry

# A discriminator returns real/fake logits (N,), or (logits (N,), class logits (N, K)) with a class head (AC-GAN).
DOutput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class GanLoss(ABC):
    """A registered objective: D's loss on real and fake logits, G's on fake logits, and its defaults."""

    d_steps_schedule = "2"  # --gan.d-steps-schedule when unset
    betas = (0.0, 0.9)  # --gan.beta1/--gan.beta2 when unset (SN-GAN's and BigGAN's Adam)
    gradient_penalty = False  # D's loss adds λ·E[(‖∇D(x̂)‖₂ − 1)²] (`gradient_penalty`)

    @staticmethod
    @abstractmethod
    def discriminator(real_N: torch.Tensor, fake_N: torch.Tensor) -> torch.Tensor:
        """D's adversarial loss on its logits of real and of generated images."""

    @staticmethod
    @abstractmethod
    def generator(fake_N: torch.Tensor) -> torch.Tensor:
        """G's adversarial loss on D's logits of generated images."""


GAN_LOSSES: Registry[type[GanLoss]] = Registry("GAN loss", "--gan.loss")


@GAN_LOSSES.register("hinge")
class Hinge(GanLoss):
    """Lim & Ye (2017), Miyato et al. (2018): D: E[relu(1 − D(x))] + E[relu(1 + D(x̃))]; G: −E[D(x̃)]."""

    @staticmethod
    def discriminator(real_N: torch.Tensor, fake_N: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_N).mean() + F.relu(1 + fake_N).mean()

    @staticmethod
    def generator(fake_N: torch.Tensor) -> torch.Tensor:
        return -fake_N.mean()


@GAN_LOSSES.register("nonsaturating")
class NonSaturating(GanLoss):
    """Goodfellow et al. (2014), §3: D: −E[log σ(D(x))] − E[log(1 − σ(D(x̃)))]; G: −E[log σ(D(x̃))]."""

    @staticmethod
    def discriminator(real_N: torch.Tensor, fake_N: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_N).mean() + F.softplus(fake_N).mean()

    @staticmethod
    def generator(fake_N: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_N).mean()


@GAN_LOSSES.register("wgan-gp")
class WassersteinGradientPenalty(GanLoss):
    """Gulrajani et al. (2017), Algorithm 1: D: E[D(x̃)] − E[D(x)] + λ·E[(‖∇D(x̂)‖₂ − 1)²]; G: −E[D(x̃)];
    n_critic = 5 D steps per G step, Adam β = (0, 0.9)."""

    d_steps_schedule = "5"
    betas = (0.0, 0.9)
    gradient_penalty = True

    @staticmethod
    def discriminator(real_N: torch.Tensor, fake_N: torch.Tensor) -> torch.Tensor:
        return fake_N.mean() - real_N.mean()

    @staticmethod
    def generator(fake_N: torch.Tensor) -> torch.Tensor:
        return -fake_N.mean()


def split_output(output: DOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits (N,), class logits (N, K) or None) of a discriminator's output, at least fp32: the losses are not
    computed in an autocast's bf16."""
    logits, classes = output if isinstance(output, tuple) else (output, None)
    widen = lambda t: t.to(torch.promote_types(t.dtype, torch.float32))  # noqa: E731
    return widen(logits), None if classes is None else widen(classes)


def discriminator_terms(
    loss: type[GanLoss], real: DOutput, fake: DOutput, labels_real: torch.Tensor, labels_fake: torch.Tensor
) -> dict[str, torch.Tensor]:
    """D's loss `d_loss`; with a class head also `d_class_loss` = CE(real) + CE(fake), which `d_loss` includes
    (Odena et al. 2017, eq. 2–3: D maximises L_S + L_C, the class log-likelihood of real and generated images)."""
    (real_N, real_classes_NK), (fake_N, fake_classes_NK) = split_output(real), split_output(fake)
    terms = {"d_loss": loss.discriminator(real_N, fake_N)}
    if real_classes_NK is not None:
        terms["d_class_loss"] = F.cross_entropy(real_classes_NK, labels_real) + F.cross_entropy(
            fake_classes_NK, labels_fake
        )
        terms["d_loss"] = terms["d_loss"] + terms["d_class_loss"]
    return terms


def generator_terms(loss: type[GanLoss], fake: DOutput, labels_fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """G's loss `g_loss`; with a class head also `g_class_loss` = CE(fake), which `g_loss` includes (G maximises
    L_C − L_S: its images are to be classified as the classes they were made for)."""
    fake_N, fake_classes_NK = split_output(fake)
    terms = {"g_loss": loss.generator(fake_N)}
    if fake_classes_NK is not None:
        terms["g_class_loss"] = F.cross_entropy(fake_classes_NK, labels_fake)
        terms["g_loss"] = terms["g_loss"] + terms["g_class_loss"]
    return terms


def gradient_penalty(
    discriminator: nn.Module,
    real_NCHW: torch.Tensor,
    fake_NCHW: torch.Tensor,
    labels_N: torch.Tensor,
    alpha_N: torch.Tensor,
) -> torch.Tensor:
    """E[(‖∇_x̂ D(x̂, y)‖₂ − 1)²] at x̂ = α·x + (1 − α)·x̃, α ∈ [0, 1] per sample (Gulrajani et al. 2017, eq. 3);
    differentiable in D's weights (the gradient is taken with create_graph).

    Under DDP pass the plain module, not the DDP wrapper: the penalty's forward needs no second pass through
    DDP's hooks, and its weight gradients still reach DDP's all-reduce in the step's one backward (each weight's
    gradient is accumulated once per backward, from every use; checked against one process on the whole batch)."""
    alpha = alpha_N.to(real_NCHW.dtype).view(-1, *[1] * (real_NCHW.dim() - 1))
    mixed = (alpha * real_NCHW.detach() + (1 - alpha) * fake_NCHW.detach()).requires_grad_(True)
    logits_N, _ = split_output(discriminator(mixed, labels_N))
    (grad,) = torch.autograd.grad(logits_N.sum(), mixed, create_graph=True)  # sum: each logit has its own x̂
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()  # grad has x̂'s dtype (fp32 also under autocast)
