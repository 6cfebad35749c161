"""Real generator architectures at random weights (none can be fetched here), saved in their packages' layouts for
the generator kinds: BigGAN-deep from pytorch-pretrained-biggan's config class, a tiny DiTPipeline from diffusers'
classes, and a TorchScript generator. The kinds' own tests and the sweeps of each kind share them."""

from pathlib import Path

import pytorch_pretrained_biggan as biggan_package
import torch
from torch import Tensor

from distgan.generators.diffusers_dit import import_diffusers

diffusers = import_diffusers()  # through distgan's door: PyPI's torchvision, which diffusers imports, needs it


def converge_spectral_norms(model: torch.nn.Module, iterations: int = 30) -> None:
    """Power-iterate each spectral norm's (u, v) to the top singular pair, as a trained checkpoint holds them: at
    their random start, σ = uᵀWv is near 0 in eval mode and W/σ overflows to NaN within three blocks."""
    for module in model.modules():
        if hasattr(module, "weight_orig"):
            weight, u = module.weight_orig.flatten(1), module.weight_u
            for _ in range(iterations):
                v = torch.nn.functional.normalize(weight.T @ u, dim=0)
                u = torch.nn.functional.normalize(weight @ v, dim=0)
            module.weight_u.copy_(u)
            module.weight_v.copy_(v)


def save_random_biggan(root: Path, **config) -> Path:
    """BigGAN-deep (the package's BigGANConfig, default 128 px and 50 M parameters; `config` overrides fields such as
    channel_width) at random weights, as config.json + pytorch_model.bin in `root`."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        model = biggan_package.BigGAN(biggan_package.BigGANConfig(**config))
        # The unconditional output batch norm's affine parameters are left uninitialised by the package.
        torch.nn.init.ones_(model.generator.bn.weight)
        torch.nn.init.zeros_(model.generator.bn.bias)
        converge_spectral_norms(model)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(model.config.to_json_string())
    torch.save(model.state_dict(), root / "pytorch_model.bin")
    return root


def save_tiny_dit(root: Path) -> Path:
    """A tiny DiT (2 blocks, 8×8 latents) and VAE (16 px) at random weights, saved with save_pretrained. Its scheduler
    is DDPM, whose steps draw fresh noise: the sampler must seed that too."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # DiT-XL/2's layout (learned σ: 2 × 4 output channels), two blocks of width 16.
        transformer = diffusers.DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                                      out_channels=8, num_layers=2, sample_size=8)  # fmt: skip
        vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                                      down_block_types=("DownEncoderBlock2D",) * 2,
                                      up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
                                      sample_size=16)  # fmt: skip
    pipeline = diffusers.DiTPipeline(transformer=transformer, vae=vae, scheduler=diffusers.DDPMScheduler())
    pipeline.save_pretrained(root)
    return root


class ScriptedNoise(torch.nn.Module):
    """Class k is grey level `level`·k plus noise scaled by the knob, drawn with the caller's generator."""

    image_size: int
    channels: int
    knob: str | None

    def __init__(self, image_size: int = 6, level: float = 40.0):
        super().__init__()
        self.image_size, self.channels, self.knob = image_size, 3, "truncation"
        self.level = torch.nn.Parameter(torch.tensor(level))

    @torch.jit.export
    def sample(self, labels: Tensor, knob_value: float | None, generator: torch.Generator) -> Tensor:
        size = self.image_size
        noise = torch.rand(labels.shape[0], size, size, 3, generator=generator).to(self.level.device)
        spread = 1.0 if knob_value is None else knob_value
        return (labels.to(self.level.device)[:, None, None, None] * self.level + 30.0 * spread * noise).to(torch.uint8)
