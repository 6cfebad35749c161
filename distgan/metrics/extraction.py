"""Feature extraction into streaming statistics, eager or fused, on one rank or many.

An image source is cut into fixed chunks; rank r takes chunks r, r+W, r+2W, … (one process: a world of size 1),
so every rank reads a disjoint slice and the result does not depend on the world size. Per chunk: uint8 NHWC → float
→ resize → normalise → network → pool → logits, then one float64 GEMM into `FeatureStats`. The fused path runs the
first part as one `torch.compile`d function (weights frozen) on channels-last tensors (Inductor: C++/OpenMP on CPUs,
Triton on GPUs); the eager path is the reference beside it (tests/test_metrics_extraction.py compares them). The network
stays float32 and the statistics float64, so results do not depend on the batch size (torchmetrics #1620).

Statistics are summed across ranks with one all-reduce at the end; logits (for IS) and, only when a metric needs
them (KID, precision/recall, per-class scores), features are gathered once at the end, never per batch. Kept
features are capped at `max_kept_features` (default 50,000 images, 400 MB of float32 at D = 2048): the images with
the lowest indices. Per-class scores are computed from them class by class (per_class.py); no per-class D×D
statistics are kept, so memory does not grow with the class count.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from distgan.metrics.extractors import Extractor
from distgan.metrics.feature_stats import FeatureStats
from distgan.runtime import distributed

DEFAULT_MAX_KEPT_FEATURES = 50_000
# On CPUs the network sees at most this many images per call. A 299×299 InceptionV3 batch of 50 has activations
# of ~280 MB that glibc maps and page-faults afresh on every call (sys time ~20 %); at 4 the largest (22 MB)
# stays under glibc's 32 MB mmap ceiling and in cache. Measured here, compiled: 50 → 30 img/s, 4 → 38 img/s.
CPU_NETWORK_BATCH = 4


@dataclass
class ImageSource:
    """`num_images` images with labels, produced chunk by chunk: `chunk(start, stop)` → uint8 (n, H, W, C)."""

    num_images: int
    labels_N: np.ndarray | None
    chunk: Callable[[int, int], np.ndarray]

    @classmethod
    def from_array(cls, images_NHWC: np.ndarray, labels_N: np.ndarray | None = None) -> "ImageSource":
        return cls(len(images_NHWC), labels_N, lambda start, stop: images_NHWC[start:stop])


@dataclass
class Extraction:
    """What one pass over a source leaves: global statistics, and per-image outputs when asked for."""

    stats: FeatureStats
    logits_NK: torch.Tensor | None  # float32, image order; for IS
    feats_ND: torch.Tensor | None  # float32, the first min(N, cap) images; for KID and precision/recall
    labels_N: np.ndarray | None


def make_step(extractor: Extractor, device: torch.device, fused: bool) -> Callable[[torch.Tensor], tuple]:
    """uint8 NHWC batch → (features float32 (N, D), logits (N, K)); fused: channels-last and torch.compile."""
    model = extractor.model.to(device)

    def step(images_NHWC: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = extractor.prepare(images_NHWC)
        if fused:
            x = x.contiguous(memory_format=torch.channels_last)
        feats = model.features(x).float()
        return feats, model.head(feats).float()

    if not fused:
        return step
    model.to(memory_format=torch.channels_last)
    # freezing: Inductor treats the (constant) weights as constants, folds BatchNorm into the convolutions and
    # prepacks them for oneDNN on CPUs. Measured here on InceptionV3 (8 images, 299×299): eager NCHW 12.4 s,
    # eager channels-last 7.2 s, compiled + frozen 5.2 s. Weights must not change after the first call.
    return torch.compile(step, dynamic=False, options={"freezing": True})


@torch.inference_mode()
def extract(
    extractor: Extractor,
    source: ImageSource,
    *,
    batch_size: int = 64,
    keep_logits: bool = True,
    keep_features: bool = False,
    per_class: bool = False,
    fused: bool = False,
    max_kept_features: int = DEFAULT_MAX_KEPT_FEATURES,
    step: Callable | None = None,
    local: bool = False,
) -> Extraction:
    """One pass over this rank's chunks of `source`; the returned statistics and outputs cover all ranks.
    `per_class`: keep the features (and check for labels) that per-class scores are computed from.
    `local`: this process alone extracts every image where the model already is, with no collective (for callers
    that hold a process group but extract on one rank)."""
    if per_class and source.labels_N is None:
        raise ValueError("per-class statistics need labels")
    keep_features = keep_features or per_class
    if local:
        device, rank, world = next(extractor.model.parameters()).device, 0, 1
    else:
        device, rank, world = distributed.select_device(), distributed.rank(), distributed.world_size()
    step = step or make_step(extractor, device, fused)
    network_batch = min(batch_size, CPU_NETWORK_BATCH) if device.type == "cpu" else batch_size
    stats = FeatureStats.empty(extractor.num_features, device)
    kept_index, kept_logits, kept_feats = [], [], []
    starts = list(range(0, source.num_images, batch_size))
    for start in starts[rank::world]:
        stop = min(start + batch_size, source.num_images)
        images = torch.as_tensor(np.ascontiguousarray(source.chunk(start, stop))).to(device)
        feats, logits = _forward(step, images, network_batch, pad=fused)
        stats.update(feats)
        if keep_logits or keep_features:  # (small tensors kept per batch only when needed: they fragment the heap)
            kept_index.append(torch.arange(start, stop))
        if keep_logits:
            kept_logits.append(logits.cpu())
        if keep_features and start < max_kept_features:
            kept_feats.append(feats[: max_kept_features - start].cpu())
    # One all-reduce of the sufficient statistics; per-image outputs gathered once.
    if world > 1:
        stats.all_reduce()
    index = torch.cat(kept_index) if kept_index else torch.zeros(0, dtype=torch.int64)
    logits_NK = _gather_in_order(index, kept_logits, 0, world) if keep_logits else None
    feats_ND = None
    if keep_features:
        feats_ND = _gather_in_order(index[index < max_kept_features], kept_feats, extractor.num_features, world)
    return Extraction(stats, logits_NK, feats_ND, source.labels_N)


def _forward(step: Callable, images: torch.Tensor, network_batch: int, pad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`step` over `images` in network batches; `pad`: every call gets exactly `network_batch` images (one compiled
    shape), short ones padded with copies of their last image whose outputs are dropped."""
    feats, logits = [], []
    for part in images.split(network_batch):
        count = len(part)
        if pad and count < network_batch:
            part = torch.cat([part, part[-1:].expand(network_batch - count, *part.shape[1:])])
        part_feats, part_logits = step(part)
        feats.append(part_feats[:count])
        logits.append(part_logits[:count])
    return torch.cat(feats), torch.cat(logits)


def _gather_in_order(index_N: torch.Tensor, rows: list[torch.Tensor], width: int, world: int) -> torch.Tensor:
    """Rows of every rank, sorted by global image index (ranks hold interleaved chunks); on the CPU. The gathers run
    on the device the process group serves (NCCL: only CUDA tensors)."""
    local = torch.cat(rows) if rows else torch.zeros(0, width)
    if world == 1:
        return local
    device = distributed.collective_device()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(local)], device=device))
    longest = int(torch.cat(sizes).max())
    width = _max_width(local, device)  # collective: every rank calls it
    padded = torch.zeros(longest, width, dtype=torch.float32, device=device)
    if len(local):  # a rank with no chunk (a set smaller than world × batch) knows no width: it sends padding only
        padded[: len(local)] = local
    padded_index = torch.full((longest,), -1, dtype=torch.int64, device=device)
    padded_index[: len(local)] = index_N[: len(local)]
    all_rows = [torch.empty_like(padded) for _ in sizes]
    all_index = [torch.empty_like(padded_index) for _ in sizes]
    dist.all_gather(all_rows, padded)
    dist.all_gather(all_index, padded_index)
    rows_all, index_all = torch.cat(all_rows).cpu(), torch.cat(all_index).cpu()
    valid = index_all >= 0
    rows_all, index_all = rows_all[valid], index_all[valid]
    return rows_all[index_all.argsort()]


def _max_width(local: torch.Tensor, device: torch.device) -> int:
    """The row width agreed by all ranks (a rank with no rows does not know it)."""
    width = torch.tensor([local.shape[1] if local.ndim == 2 else 0], device=device)
    dist.all_reduce(width, op=dist.ReduceOp.MAX)
    return int(width.item())
