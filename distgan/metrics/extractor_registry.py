"""What every feature extractor is (`Extractor`) and the registry its builders register into by name (EXTRACTORS:
`inception.py`, `vision_transformers.py`, and `extractors.py`'s domain classifier). It imports no builder, so that
the builders can import it; `extractors.py` imports them all, and is what callers import.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

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


# name -> builder(weights path, cache dir)
EXTRACTORS: Registry[Callable[[Path | None, Path | None], Extractor]] = Registry("extractor", "--extractor")
register_extractor = EXTRACTORS.add
