"""`--generator.kind diffusers`: a class-conditional latent diffusion transformer (DiT, Peebles & Xie 2023) through
the `diffusers` package's `DiTPipeline` (DiTTransformer2DModel + AutoencoderKL + its scheduler).

Weights: `--generator.weights DIR`, a `DiTPipeline.save_pretrained` directory (`model_index.json`, `transformer/`,
`vae/`, `scheduler/`), loaded with `local_files_only`: nothing is downloaded. Recorded by one sha256 over its files
(their relative paths and sha256s). `--generator.target steps=N` sets the number of denoising steps (default 50, the
pipeline's own).

Knob: the classifier-free guidance scale w ≥ 1 (Ho & Salimans 2022), the diffusion analogue of the truncation trick's
quality/diversity trade-off: ε = ε(x, ∅) + w·(ε(x, y) − ε(x, ∅)); w = 1 is plain conditional sampling (the pipeline
skips guidance at w ≤ 1, so values below 1 are refused rather than silently treated as 1).

Classes: DiT generates ImageNet's 1,000 (class 1000 is the pipeline's null label); the real dataset's classes map
onto them by synset id (imagenet_synsets).

Precision: bf16 autocast and TF32 on GPUs that support them, fp32 on CPUs unless DISTGAN_PRECISION=bf16 (precision.py);
recorded in the set's provenance.
"""

import importlib.util
from pathlib import Path

import torch

from distgan.errors import ConfigError
from distgan.generators.imagenet_synsets import IMAGENET_SYNSETS, imagenet_class_indices
from distgan.generators.precision import Precision, sampling_precision
from distgan.generators.registry import GENERATORS, BuildRequest, Built, path_sha256
from distgan.runtime.optional import import_torchvision

INSTALL = "pip install diffusers==0.42.1 (make run and make test do)"
DEFAULT_NUM_INFERENCE_STEPS = 50  # DiTPipeline.__call__'s default


def import_diffusers():
    """The diffusers package; ConfigError saying how to install it otherwise."""
    if importlib.util.find_spec("torchvision") is not None:  # diffusers imports it when installed: PyPI's torchvision
        import_torchvision()  # fails to import beside the CPU torch unless distgan's door defines two op schemas
    try:
        import diffusers
    except ImportError as error:
        raise ConfigError(f"--generator.kind diffusers needs diffusers ({error}): {INSTALL}") from error
    return diffusers


def parse_steps(target: str | None) -> int:
    """`--generator.target` of the diffusers kind: empty, or `steps=N` (N ≥ 1 denoising steps)."""
    if not target:
        return DEFAULT_NUM_INFERENCE_STEPS
    key, _, value = target.partition("=")
    if key.strip() != "steps" or not value.strip().isdigit() or int(value) < 1:
        raise ConfigError(f"--generator.target for --generator.kind diffusers must be steps=N, N ≥ 1 (got {target!r})")
    return int(value)


def load_dit_pipeline(weights: Path | None):
    """The DiTPipeline saved in `weights`, on the CPU, its progress bar off."""
    diffusers = import_diffusers()
    if weights is None or not (Path(weights) / "model_index.json").is_file():
        raise ConfigError(f"--generator.kind diffusers needs --generator.weights DIR, a DiTPipeline.save_pretrained "
                          f"directory with model_index.json (got {weights}); nothing is downloaded")  # fmt: skip
    try:
        # low_cpu_mem_usage needs `accelerate`; without it diffusers warns and falls back to this.
        pipeline = diffusers.DiTPipeline.from_pretrained(weights, local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, TypeError) as error:  # what diffusers raises on missing or foreign components
        raise ConfigError(f"--generator.weights {weights}: not a DiTPipeline ({error})") from None
    num_labels = pipeline.transformer.config.num_embeds_ada_norm
    if num_labels != len(IMAGENET_SYNSETS):
        raise ConfigError(f"--generator.weights {weights}: a DiT of {num_labels} classes; the diffusers kind maps "
                          f"datasets onto ImageNet's {len(IMAGENET_SYNSETS)}")  # fmt: skip
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class DiTGenerator:
    """A DiTPipeline under the generator contract: `sample(labels, guidance, generator)` → uint8 [N, H, W, C]."""

    knob = "guidance"

    def __init__(self, pipeline, imagenet_index_K: torch.Tensor, *, device: torch.device, num_inference_steps: int,
                 arithmetic: Precision):  # fmt: skip
        self.pipeline = pipeline.to(device)
        self.device = device
        self.arithmetic, self.precision = arithmetic, arithmetic.name  # `precision`: what the set records
        vae = pipeline.vae.config
        self.image_size = pipeline.transformer.config.sample_size * 2 ** (len(vae.block_out_channels) - 1)
        self.channels = vae.out_channels
        self.imagenet_index_K = imagenet_index_K  # the real dataset's class k is ImageNet class imagenet_index_K[k]
        self.num_inference_steps = num_inference_steps

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, knob_value: float | None, generator: torch.Generator) -> torch.Tensor:
        """One image per label (the real dataset's class indices), at guidance scale `knob_value`."""
        if knob_value is None or knob_value < 1:
            raise ConfigError(f"--knob-values: the guidance scale must be ≥ 1 (1: no guidance) (got {knob_value})")
        # The initial latents come from `generator`; a stochastic scheduler's step (DDPM, ancestral samplers) draws
        # from the global RNG, so that too is seeded from `generator`, inside a fork that leaves the caller's intact.
        step_seed = int(torch.randint(2**62, (1,), generator=generator))
        forked = torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])
        with forked, self.arithmetic.applied(self.device):
            torch.manual_seed(step_seed)
            samples_NCHW = self.pipeline(class_labels=self.imagenet_index_K[labels].tolist(), guidance_scale=knob_value,
                                         generator=generator, num_inference_steps=self.num_inference_steps,
                                         output_type="pt").images  # fmt: skip
        # The pipeline returns floats in [0, 1] (bf16 under autocast), [N, C, H, W] on its device; round to the nearest
        # of 256 levels.
        return samples_NCHW.float().mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)


@GENERATORS.register("diffusers")
def build_dit(request: BuildRequest) -> Built:
    """`--generator.weights DIR` of a DiTPipeline, `--generator.target steps=N`; the dataset's classes mapped to
    ImageNet's by synset id. No truncation: the truncation flags do not apply (the registry warns)."""
    num_inference_steps = parse_steps(request.target)
    imagenet_index_K = imagenet_class_indices(request.class_names, num_classes=request.num_classes, kind="diffusers")
    pipeline = load_dit_pipeline(request.weights)
    generator = DiTGenerator(pipeline, imagenet_index_K, device=request.device, num_inference_steps=num_inference_steps,
                             arithmetic=sampling_precision(request.device))  # fmt: skip
    return Built(generator, path_sha256(Path(request.weights)), "pipeline directory")
