"""`--generator.kind biggan`: BigGAN-deep (Brock et al. 2019), the generator Ravuri & Vinyals evaluated, through the
`pytorch-pretrained-biggan` package (its PyTorch port of DeepMind's TF-Hub BigGAN-deep 128/256/512).

Weights: `--generator.weights DIR` in that package's layout, `config.json` (a `BigGANConfig`: the resolution and
widths) and `pytorch_model.bin` (the `torch.save`d state dict), as `BigGAN.from_pretrained(DIR)` reads them; nothing
is downloaded. Loaded strictly: `from_pretrained` loads with `strict=False`, which would leave the layers of a
checkpoint that does not fit its config at their random initialisation. Recorded by the sha256 of the .bin.

Knob: the truncation τ > 0. τ also picks the batch-norm statistics the checkpoint stores for 51 values of τ in [0, 1]
(its `n_stats`); above 1 (the paper's τ = 1.5 and 2) those of τ = 1, the widest it has. Latents follow a named
convention (`distgan.models.truncation`), by default BigGAN's own, "scale": a normal truncated to [−2, 2], times τ
(the package's `truncated_noise_sample`).

Classes: BigGAN generates ImageNet's 1,000; the real dataset's classes map onto them by synset id (imagenet_synsets).

Precision: bf16 autocast and TF32 on GPUs that support them, fp32 on CPUs unless DISTGAN_PRECISION=bf16 (precision.py);
recorded in the set's provenance.
"""

from pathlib import Path

import torch

from distgan.data.transforms import to_uint8_images
from distgan.errors import ConfigError
from distgan.generators.imagenet_synsets import IMAGENET_SYNSETS, imagenet_class_indices
from distgan.generators.precision import Precision, sampling_precision
from distgan.generators.registry import GENERATORS, BuildRequest, Built, refuse_unused
from distgan.models.truncation import truncated_latents
from distgan.runtime.hashing import sha256_of

INSTALL = "pip install pytorch-pretrained-biggan==0.1.1 boto3==1.44.8 (make run and make test do)"
CONFIG_NAME, WEIGHTS_NAME = "config.json", "pytorch_model.bin"  # the package's layout (its model.py)
DEFAULT_TRUNCATION_CONVENTION = "scale"  # BigGAN's own (its utils.truncated_noise_sample)


def _import_biggan():
    try:
        import pytorch_pretrained_biggan
    except ImportError as error:
        raise ConfigError(f"--generator.kind biggan needs pytorch-pretrained-biggan ({error}): {INSTALL}") from error
    return pytorch_pretrained_biggan


def load_biggan(weights: Path | None) -> torch.nn.Module:
    """The BigGAN-deep of a weights directory (config.json + pytorch_model.bin), in eval mode, on the CPU."""
    package = _import_biggan()
    if weights is None:
        raise ConfigError("--generator.kind biggan needs --generator.weights DIR holding config.json and "
                          "pytorch_model.bin: no weights are downloaded (see docs/generators.md)")  # fmt: skip
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (Path(weights) / name).is_file():
            raise ConfigError(f"--generator.weights {weights}: no {name} (the layout: {CONFIG_NAME}, {WEIGHTS_NAME})")
    config = package.BigGANConfig.from_json_file(Path(weights) / CONFIG_NAME)
    if config.num_classes != len(IMAGENET_SYNSETS):
        raise ConfigError(f"--generator.weights {weights}: a BigGAN of {config.num_classes} classes; the biggan kind "
                          f"maps datasets onto ImageNet's {len(IMAGENET_SYNSETS)}")  # fmt: skip
    model = package.BigGAN(config)
    state = torch.load(Path(weights) / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # torch lists every mismatched tensor: name the first few
        mismatches = str(error).splitlines()[1:]
        raise ConfigError(f"--generator.weights {weights}: {WEIGHTS_NAME} does not fit {CONFIG_NAME}, "
                          f"{len(mismatches)} tensors differ: {' '.join(mismatches[:2])} …") from None  # fmt: skip
    # Eval mode matters: in train mode spectral norm runs a power iteration per forward, changing the weights.
    return model.eval()


class BigGANGenerator:
    """BigGAN-deep under the generator contract: `sample(labels, truncation, generator)` → uint8 [N, H, W, 3]."""

    channels = 3
    knob = "truncation"

    def __init__(self, model: torch.nn.Module, imagenet_index_K: torch.Tensor, *, device: torch.device,
                 truncation_convention: str, truncation_factor: float, arithmetic: Precision):  # fmt: skip
        self.model = model.to(device)
        self.device = device
        self.arithmetic, self.precision = arithmetic, arithmetic.name  # `precision`: what the set records
        self.image_size = model.config.output_dim
        self.imagenet_index_K = imagenet_index_K  # the real dataset's class k is ImageNet class imagenet_index_K[k]
        self.truncation_convention, self.truncation_factor = truncation_convention, truncation_factor

    def latents(self, num: int, truncation: float, generator: torch.Generator) -> torch.Tensor:
        """z of shape [num, z_dim] on the CPU, drawn from `generator` in this generator's truncation convention."""
        return truncated_latents(num, self.model.config.z_dim, truncation=truncation, factor=self.truncation_factor,
                                 convention=self.truncation_convention, generator=generator)  # fmt: skip

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, knob_value: float | None, generator: torch.Generator) -> torch.Tensor:
        """One image per label (the real dataset's class indices), at truncation `knob_value`."""
        if knob_value is None or not knob_value > 0:
            raise ConfigError(f"--knob-values: BigGAN's truncation must be > 0 (got {knob_value})")
        z = self.latents(len(labels), knob_value, generator).to(self.device)
        one_hot = torch.nn.functional.one_hot(self.imagenet_index_K[labels], len(IMAGENET_SYNSETS)).float()
        with self.arithmetic.applied(self.device):
            images = self.model(z, one_hot.to(self.device), min(knob_value, 1.0))  # its batch-norm statistics end at 1
        return torch.from_numpy(to_uint8_images(images))


@GENERATORS.register("biggan")
def build_biggan(request: BuildRequest) -> Built:
    """`--generator.weights DIR` of BigGAN-deep; the dataset's classes mapped to ImageNet's by synset id. The
    truncation convention defaults to BigGAN's ("scale"), whose factor 2 is its truncnorm's bound [−2, 2]."""
    refuse_unused("biggan", "--generator.target", request.target)
    imagenet_index_K = imagenet_class_indices(request.class_names, num_classes=request.num_classes, kind="biggan")
    model = load_biggan(request.weights)
    convention = request.truncation_convention or DEFAULT_TRUNCATION_CONVENTION
    generator = BigGANGenerator(model, imagenet_index_K, device=request.device, truncation_convention=convention,
                                truncation_factor=request.truncation_factor,
                                arithmetic=sampling_precision(request.device))  # fmt: skip
    digest = sha256_of(Path(request.weights) / WEIGHTS_NAME)
    return Built(generator, digest, "weights file", truncation_convention=convention)
