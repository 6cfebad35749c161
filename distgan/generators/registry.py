"""Generator kinds (`--generator.kind`): each opens a generator that follows the contract (contract.py).

A kind is a builder registered in GENERATORS, called as `build(request: BuildRequest) -> Built`.
`open_generator` is the front door: it builds, checks the contract's attributes and names what made the
generator by sha256 for cache keys.
"""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distgan.config import GeneratorConfig
from distgan.errors import ConfigError
from distgan.generators.contract import LoadedGenerator, check_attributes
from distgan.runtime.hashing import sha256_of
from distgan.runtime.registry import Registry

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    """What a builder returns: the contract object and the digest of what made it."""

    generator: Any
    sha256: str
    sha256_of: str  # what the digest covers, in words ("weights file", "source file", ...)
    truncation_convention: str | None = None  # the convention it samples with; None for a kind without one


@dataclass(frozen=True)
class BuildRequest:
    """What every builder is given: the flags as set (None when unset) and the dataset's classes."""

    target: str | None  # --generator.target
    weights: Path | None  # --generator.weights
    num_classes: int
    class_names: tuple[str, ...] | None  # in label order; kinds that map classes by name refuse None
    device: torch.device
    truncation_convention: str | None  # None: the kind's own default
    truncation_factor: float


Builder = Callable[[BuildRequest], Built]


GENERATORS: Registry[Builder] = Registry("generator kind", "--generator.kind")


def check_generator(generator: GeneratorConfig) -> None:
    """ConfigError naming --generator.kind and its choices unless the kind is registered (the package registers
    every kind when it is imported)."""
    GENERATORS.get_or_raise(generator.kind)


def open_generator(
    kind: str,
    target: str | None = None,
    weights: Path | None = None,
    *,
    num_classes: int,
    device: torch.device,
    class_names: tuple[str, ...] | None = None,
    truncation_convention: str | None = None,
    truncation_factor: float = 2.0,
) -> LoadedGenerator:
    """Build the generator of `kind` and check its attributes; its identity says what made it (sha256)."""
    if class_names is not None and len(class_names) != num_classes:
        raise ConfigError(f"{len(class_names)} class names for {num_classes} classes")
    weights = None if weights is None else Path(weights)
    request = BuildRequest(target, weights, num_classes, None if class_names is None else tuple(class_names), device,
                           truncation_convention, truncation_factor)  # fmt: skip
    built = GENERATORS.get_or_raise(kind)(request)
    identity = {
        "kind": kind,
        "target": target,
        "weights": None if weights is None else str(weights),
        "sha256": built.sha256,
        "sha256_of": built.sha256_of,
        "truncation_convention": built.truncation_convention,
    }
    loaded = LoadedGenerator(built.generator, num_classes, identity)
    check_attributes(built.generator, loaded.name)
    if truncation_convention is not None and built.truncation_convention is None:
        _log.warning("--sample.truncation-convention has no effect on a %s generator", kind)
    return loaded


def path_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory: of each file's relative path and sha256, in sorted order."""
    path = Path(path)
    if path.is_file():
        return sha256_of(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\t{sha256_of(file)}\n".encode())
    return digest.hexdigest()


def refuse_unused(kind: str, flag: str, value) -> None:
    """ConfigError when a flag the kind does not read is set (it would silently do nothing)."""
    if value is not None:
        raise ConfigError(f"--generator.kind {kind} does not use {flag} (got {str(value)!r})")


def existing_file(path: Path | None, flag: str, kind: str, what: str) -> Path:
    """`path` when it is a file; ConfigError naming the flag otherwise."""
    if path is None:
        raise ConfigError(f"--generator.kind {kind} needs {flag} ({what})")
    if not Path(path).is_file():
        raise ConfigError(f"{flag}: {path} is not a file ({what})")
    return Path(path)
