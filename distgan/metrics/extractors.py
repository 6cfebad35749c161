"""Feature extractors by name, one registry (extractor_registry.py) that the builders register into: `inception`
(the FID InceptionV3, inception.py), `domain` (a classifier trained on the real data, docs/concepts.md; here),
`dinov2` and `clip` (vision_transformers.py). An extractor turns uint8 NHWC images into features (N, D) and logits
(N, K). Import extractors from this module: importing it registers them all.
"""

from pathlib import Path

from torch import nn

from distgan.data.transforms import to_model_input
from distgan.errors import ConfigError
from distgan.metrics.extractor_registry import EXTRACTORS, Extractor, register_extractor
from distgan.metrics.inception import inception_extractor
from distgan.metrics.vision_transformers import clip_extractor, dinov2_extractor
from distgan.models.classifiers import load_classifier
from distgan.runtime.hashing import sha256_of

__all__ = [
    "EXTRACTORS",
    "Extractor",
    "build_extractor",
    "clip_extractor",
    "dinov2_extractor",
    "domain_extractor",
    "inception_extractor",
    "register_extractor",
    "wrap_model",
]


@EXTRACTORS.register("domain")
def domain_extractor(weights: Path | None, cache_dir: Path | None) -> Extractor:
    """A classifier saved by `distgan train-classifier` (model.pt): penultimate features, class logits."""
    if weights is None or not Path(weights).is_file():
        raise ConfigError(f"--domain-model: the domain extractor needs a classifier model.pt (got {weights})")
    return Extractor("domain", load_classifier(Path(weights)), to_model_input, sha256_of(Path(weights)), "none")


def build_extractor(name: str, weights: Path | None = None, cache_dir: Path | None = None) -> Extractor:
    """The registered extractor `name`, in eval mode without gradients."""
    extractor = EXTRACTORS.get_or_raise(name)(weights, cache_dir)
    extractor.model.eval().requires_grad_(False)
    return extractor


def wrap_model(name: str, model: nn.Module, weights_sha256: str = "in-memory") -> Extractor:
    """An in-memory classifier with `features`/`head` as an extractor (tests, benchmarks)."""
    return Extractor(name, model.eval(), to_model_input, weights_sha256, "none")
