"""The parts of benchmarks/gpu_check.py in the order of its table, each with the key `--parts` selects it by."""

from collections.abc import Callable
from dataclasses import dataclass

from .collectives import part_nccl
from .common import Row, Setup
from .data import part_dali
from .extraction import part_fused, part_inception
from .metrics_job import part_metrics
from .sampling import part_sampling
from .scoring import part_per_class, part_scoring
from .sweep import part_sweep
from .training import part_bf16_ddp, part_bf16_deepspeed, part_sampler


@dataclass(frozen=True)
class Part:
    key: str  # what --parts selects: "2" selects 2a and 2b
    name: str
    run: Callable[[Setup, Row], None]


PARTS = (
    Part("1", "1 NCCL: DDP step, evaluation, gather", part_nccl),
    Part("2a", "2a bf16 GAN + classifier, DDP engine", part_bf16_ddp),
    Part("2b", "2b bf16 GAN + classifier, DeepSpeed", part_bf16_deepspeed),
    Part("3", "3 DALI mixed vs CPU decoding", part_dali),
    Part("4", "4 Inception vs pytorch-fid", part_inception),
    Part("5", "5 fused vs eager extractor", part_fused),
    Part("6", "6 NVML sampler during training", part_sampler),
    Part("7", "7 quick sweep, 1 GPU per worker", part_sweep),
    Part("8", "8 IS+FID+KID+PR of 50k images", part_metrics),
    Part("9", "9 sampling job on the GPU, distgan + biggan", part_sampling),
    Part("10", "10 reference + scoring jobs on the GPU", part_scoring),
    Part("11", "11 per-class FID/KID at 1,000 classes", part_per_class),
)
