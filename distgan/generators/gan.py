"""Kind `distgan`: the conditional GAN distgan trains (`generator.pt` from `train.gan.save_generator`).

Its knob is the truncation τ; the latents come from `models.truncation.truncated_latents` under
`--sample.truncation-convention` ("resample", the paper's footnote, by default). With the generator seeded by s
it makes the images `sample_images(..., seed=s)` makes.
"""

import torch

from distgan.errors import ConfigError
from distgan.generators.registry import GENERATORS, BuildRequest, Built, existing_file, refuse_unused
from distgan.models.gan import ConditionalGenerator, load_generator
from distgan.models.truncation import images_from_latents, truncated_latents
from distgan.runtime.hashing import sha256_of

DEFAULT_CONVENTION = "resample"


class TrainedGan:
    """The contract over a ConditionalGenerator: knob "truncation"."""

    knob = "truncation"

    def __init__(self, net: ConditionalGenerator, *, convention: str, factor: float, batch_size: int = 500):
        self.net, self.convention, self.factor, self.batch_size = net.eval(), convention, factor, batch_size
        device = next(net.parameters()).device
        with torch.no_grad():  # the shapes it makes, read off one image
            one = net(torch.zeros(1, net.latent_dim, device=device), torch.zeros(1, dtype=torch.int64, device=device))
        self.channels, self.image_size = one.shape[1], one.shape[2]

    def sample(self, labels: torch.Tensor, knob_value: float | None, generator: torch.Generator) -> torch.Tensor:
        if knob_value is None:
            raise ConfigError("a distgan generator samples at a truncation τ: its knob value cannot be None")
        z = truncated_latents(
            len(labels), self.net.latent_dim, truncation=knob_value, factor=self.factor, convention=self.convention,
            generator=generator,
        )  # fmt: skip
        return torch.from_numpy(images_from_latents(self.net, z, labels, batch_size=self.batch_size))


@GENERATORS.register("distgan")
def build_trained_gan(request: BuildRequest) -> Built:
    """`--generator.weights generator.pt`; its class count must be the dataset's."""
    refuse_unused("distgan", "--generator.target", request.target)
    what = "a generator.pt written by `distgan train-gan`"
    path = existing_file(request.weights, "--generator.weights", "distgan", what)
    net = load_generator(path)
    if net.num_classes != request.num_classes:
        raise ConfigError(
            f"--generator.weights: {path} makes {net.num_classes} classes, the dataset has {request.num_classes}"
        )
    convention = request.truncation_convention or DEFAULT_CONVENTION
    gan = TrainedGan(net.to(request.device), convention=convention, factor=request.truncation_factor)
    return Built(gan, sha256_of(path), "weights file", truncation_convention=convention)
