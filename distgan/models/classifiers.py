"""Image classifiers: CIFAR-style ResNets (He et al. 2016, §4.2), ResNet-50, and a small CNN.

Every classifier returns logits from `forward` and its penultimate features from `features`, so the
same network serves as the replacement experiment's classifier and as the offline feature extractor
of IS / FID (see docs/concepts.md).
"""

import functools
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distgan.errors import ConfigError
from distgan.runtime.atomic import load_plain, save_torch_atomic
from distgan.runtime.registry import Registry


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or a strided 1×1 projection where the shape changes (He et al.'s option B)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or 1×1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck of ResNet-50, stride on the 3×3 (torchvision's "v1.5")."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        # Zero-init of the last BN makes each block start as the identity (Goyal et al. 2017, §5.1).
        nn.init.zeros_(self.bn3.weight)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class Classifier(nn.Module):
    """A stem, a stack of stages, global average pooling and a linear head."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, num_features: int, num_classes: int):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.num_features = num_features
        self.head = nn.Linear(num_features, num_classes)

    def features(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, num_features): the offline FID feature space."""
        return torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x_NCHW)), 1), 1)

    def forward(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x_NCHW))


def cifar_resnet(depth: int, in_channels: int, num_classes: int) -> Classifier:
    """ResNet-(6n+2) for 32×32 inputs: three stages of n basic blocks at 16/32/64 channels."""
    if (depth - 2) % 6 != 0:
        raise ConfigError(f"CIFAR ResNet depth must be 6n+2 (got {depth})")
    num_blocks = (depth - 2) // 6
    stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
    layers, channels = [], 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(num_blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(channels, width, stride))
            channels = width
    return Classifier(stem, nn.Sequential(*layers), channels, num_classes)


def resnet50(in_channels: int, num_classes: int) -> Classifier:
    """ImageNet ResNet-50 (3-4-6-3 bottlenecks) as used by Ravuri & Vinyals for ImageNet at 224×224."""
    stem = nn.Sequential(
        nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
    )
    layers, channels = [], 64
    for stage, (width, num_blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
        for block in range(num_blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(Bottleneck(channels, width, stride))
            channels = width * Bottleneck.expansion
    return Classifier(stem, nn.Sequential(*layers), channels, num_classes)


def small_cnn(in_channels: int, num_classes: int) -> Classifier:
    """Three conv-BN-ReLU layers: a fast classifier for smoke runs and small images."""
    stem = nn.Sequential(nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
    stages = nn.Sequential(
        nn.Conv2d(32, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
    )  # fmt: skip
    return Classifier(stem, stages, 128, num_classes)


# name -> builder(in_channels, num_classes)
CLASSIFIERS: Registry[Callable[[int, int], Classifier]] = Registry("classifier", "--classifier.arch")
for depth in (20, 32, 56):
    CLASSIFIERS.add(f"resnet{depth}", functools.partial(cifar_resnet, depth))
CLASSIFIERS.add("resnet50", resnet50)
CLASSIFIERS.add("small_cnn", small_cnn)


def build_classifier(name: str, in_channels: int, num_classes: int) -> Classifier:
    """Instantiate a registered classifier by name."""
    return CLASSIFIERS.get_or_raise(name)(in_channels, num_classes)


def save_classifier(path: Path, model: Classifier, *, arch: str, in_channels: int, num_classes: int) -> None:
    """Write a classifier with what rebuilds it, atomically."""
    payload = {"arch": arch, "in_channels": in_channels, "num_classes": num_classes, "state_dict": model.state_dict()}
    save_torch_atomic(payload, path)


def load_classifier(path: Path) -> Classifier:
    """Rebuild a classifier saved by `save_classifier`, in eval mode on the CPU."""
    payload = load_plain(path)
    model = build_classifier(payload["arch"], payload["in_channels"], payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()
