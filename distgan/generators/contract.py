"""The generator contract (docs/generators.md), checked where distgan meets a generator it did not write.

A generator is any object with
    image_size: int          H = W of its images
    channels: int            1 or 3
    knob: str | None         the name of its sampling knob ("truncation", "guidance", ...), None if it has none
    sample(labels, knob_value, generator) -> torch.uint8 [N, H, W, C] on any device
        labels      CPU torch.int64 [N], values in [0, num_classes)
        knob_value  float, or None for a generator without a knob
        generator   a seeded CPU torch.Generator: all its randomness comes from it
and optionally
    precision: str           the arithmetic it samples in ("fp32", "bf16+tf32", ...), recorded with a sampled set;
                             absent (None): the generator's own business, recorded as None
made by a factory called as `factory(num_classes=K, device=torch.device)`. Breaches are named once, with the
generator (kind and target) and what was wrong: ConfigError for what it is or is asked, DataError for what it made.
"""

from dataclasses import dataclass
from typing import Any

import torch

from distgan.errors import ConfigError, DataError, DistganError, GeneratorError

CHANNELS = (1, 3)


@dataclass(frozen=True)
class LoadedGenerator:
    """An opened generator: the contract object, the class count it was made for, and what made it.

    identity: {"kind", "target", "weights", "sha256", "sha256_of", "truncation_convention"} — for cache keys and
    result.json (registry.open_generator fills it)."""

    generator: Any
    num_classes: int
    identity: dict

    @property
    def name(self) -> str:
        """How errors name it: the kind and its target (or weights), e.g. "python generator 'gens.py:make'"."""
        what = self.identity["target"] if self.identity["target"] is not None else self.identity["weights"]
        return f"{self.identity['kind']} generator {str(what)!r}"

    @property
    def image_size(self) -> int:
        return self.generator.image_size

    @property
    def channels(self) -> int:
        return self.generator.channels

    @property
    def knob(self) -> str | None:
        return self.generator.knob

    @property
    def precision(self) -> str | None:
        return getattr(self.generator, "precision", None)


def check_attributes(obj: Any, name: str) -> None:
    """ConfigError naming `name` and the first attribute of `obj` that breaks the contract."""
    for attribute in ("image_size", "channels", "knob", "sample"):
        if not hasattr(obj, attribute):
            raise ConfigError(f"{name}: {type(obj).__name__} has no attribute {attribute!r} (see docs/generators.md)")
    if not callable(obj.sample):
        raise ConfigError(f"{name}: its `sample` must be a method (got {type(obj.sample).__name__})")
    size = obj.image_size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"{name}: `image_size` must be a positive int (got {size!r})")
    if not isinstance(obj.channels, int) or isinstance(obj.channels, bool) or obj.channels not in CHANNELS:
        raise ConfigError(f"{name}: `channels` must be 1 or 3 (got {obj.channels!r})")
    if obj.knob is not None and not isinstance(obj.knob, str):
        raise ConfigError(f"{name}: `knob` must be a str or None (got {obj.knob!r})")
    precision = getattr(obj, "precision", None)
    if precision is not None and not isinstance(precision, str):
        raise ConfigError(f"{name}: `precision` must be a str or absent (got {precision!r})")


def checked_labels(loaded: LoadedGenerator, labels) -> torch.Tensor:
    """`labels` as the contract hands them (CPU int64 [N]); ConfigError naming a label outside [0, num_classes)."""
    labels_N = torch.as_tensor(labels).cpu()
    if labels_N.ndim != 1 or labels_N.dtype.is_floating_point or labels_N.dtype == torch.bool:
        shape = tuple(labels_N.shape)
        raise ConfigError(f"{loaded.name}: labels must be integers of shape [N] (got {labels_N.dtype} {shape})")
    labels_N = labels_N.to(torch.int64)
    outside = (labels_N < 0) | (labels_N >= loaded.num_classes)
    if outside.any():
        label = int(labels_N[outside][0])
        raise ConfigError(f"{loaded.name}: label {label} is outside [0, {loaded.num_classes}) (the dataset's classes)")
    return labels_N


def checked_knob_value(loaded: LoadedGenerator, knob_value: float | None) -> float | None:
    """The knob value as a float; ConfigError when a generator without a knob is given one."""
    if knob_value is None:
        return None
    if loaded.knob is None:
        raise ConfigError(f"{loaded.name} has no sampling knob: its knob value must be None (got {knob_value!r})")
    return float(knob_value)


def checked_images(loaded: LoadedGenerator, images: Any, num: int) -> torch.Tensor:
    """What `sample` returned, on the CPU; DataError naming the generator and the breach otherwise."""
    expected = (num, loaded.image_size, loaded.image_size, loaded.channels)
    if not torch.is_tensor(images):
        raise DataError(f"{loaded.name}: sample returned {type(images).__name__}, not a torch.Tensor")
    if images.dtype != torch.uint8:
        raise DataError(f"{loaded.name}: sample returned dtype {images.dtype}, the contract is torch.uint8")
    if images.ndim != 4:
        raise DataError(f"{loaded.name}: sample returned shape {tuple(images.shape)}, the contract is [N, H, W, C]")
    if images.shape[0] != num:
        raise DataError(f"{loaded.name}: sample returned {images.shape[0]} images for {num} labels")
    if tuple(images.shape) != expected:
        raise DataError(
            f"{loaded.name}: sample returned images of shape (H, W, C) = {tuple(images.shape[1:])}, not the declared "
            f"{expected[1:]} (image_size {loaded.image_size}, channels {loaded.channels})"
        )
    return images.cpu()


def checked_sample(
    loaded: LoadedGenerator, labels, knob_value: float | None, generator: torch.Generator
) -> torch.Tensor:
    """`loaded.generator.sample(labels, knob_value, generator)` with both sides of the contract checked: a uint8 CPU
    tensor [N, H, W, C]. Labels (tensor or array) out of range are refused before the generator runs."""
    labels_N = checked_labels(loaded, labels)
    knob = checked_knob_value(loaded, knob_value)
    if len(labels_N) == 0:  # nothing to ask for: no generator call, whose output shape would be ambiguous
        return torch.empty((0, loaded.image_size, loaded.image_size, loaded.channels), dtype=torch.uint8)
    try:
        images = loaded.generator.sample(labels_N, knob, generator)
    except DistganError:
        raise
    except Exception as err:  # the generator's own code: one line naming it (deterministic: a retry meets it again)
        raise GeneratorError(f"{loaded.name}: sample() raised {type(err).__name__}: {err}") from err
    return checked_images(loaded, images, len(labels_N))
