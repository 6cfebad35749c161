"""Kind `torchscript`: a scripted module (`torch.jit.save`) that follows the contract itself.

`--generator.weights FILE` (or `--generator.target FILE`) is loaded with `torch.jit.load(FILE, map_location=device)`.
The module carries `image_size: int`, `channels: int` and `knob: str | None` as attributes (class-level
annotations, or `Final` constants) and exports

    @torch.jit.export
    def sample(self, labels: Tensor, knob_value: float | None, generator: torch.Generator) -> Tensor

TorchScript types `torch.Generator`, so the module receives the caller's seeded CPU generator itself, as a Python
generator does: it draws its noise on the CPU (`torch.randn(shape, generator=generator)`) and moves it to its
device. Same generator state, same images, on any device.
"""

from pathlib import Path

import torch

from distgan.errors import ConfigError, DataError
from distgan.generators.registry import GENERATORS, BuildRequest, Built, existing_file
from distgan.runtime.hashing import sha256_of


def scripted_file(target: str | None, weights: Path | None) -> Path:
    """The module's file: --generator.weights, or --generator.target when weights is unset."""
    if target is not None and weights is not None:
        raise ConfigError(
            f"--generator.kind torchscript takes its file from --generator.weights or --generator.target, not both "
            f"(got {str(weights)!r} and {target!r})"
        )
    flag = "--generator.weights" if target is None else "--generator.target"
    return existing_file(weights if target is None else Path(target), flag, "torchscript", "a torch.jit.save file")


@GENERATORS.register("torchscript")
def build_torchscript(request: BuildRequest) -> Built:
    """The scripted module, on `device`, in eval mode."""
    path = scripted_file(request.target, request.weights)
    try:
        module = torch.jit.load(path, map_location=request.device)
    except (RuntimeError, ValueError) as err:  # torch's archive reader raises these for a foreign or damaged file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a TorchScript file ({first_line})") from None
    return Built(module.eval(), sha256_of(path), "scripted module file")
