"""Parts 4 and 5 of benchmarks/gpu_check.py: distgan's Inception extraction and statistics against pytorch-fid's
network, and the fused (compiled) extractor against eager."""

import contextlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .common import (
    Row,
    Setup,
    check,
    have,
    inception_extractor,
    per_sec,
    pytorch_fid_layout,
    sec,
    small_cnn_extractor,
    synchronize,
    synthetic_images,
    weights_note,
)

# 4. distgan's Inception extraction and statistics against pytorch-fid's network.


@contextlib.contextmanager
def strict_fp32():
    """TF32 off for convolutions and matmuls (torch allows it in cuDNN convolutions by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def pytorch_fid_network(weights: Path) -> tuple[nn.Module | None, str]:
    """pytorch-fid 0.3.0's InceptionV3 loading `weights` (its download replaced by this file), or (None, why not).
    Its blocks subclass torchvision's; where torchvision does not import, torch-fidelity's identically named blocks
    stand in (as in tests/test_metrics_inception.py)."""
    from distgan.peers import pytorch_fid_inception

    if not have("pytorch_fid"):
        return None, "pytorch-fid is not installed"
    try:
        import torchvision  # noqa: F401

        real_torchvision = True
    except Exception:  # absent, or built for another torch
        if not have("torch_fidelity"):
            return None, "pytorch-fid needs torchvision or torch-fidelity's blocks"
        real_torchvision = False
    network = pytorch_fid_inception(weights, real_torchvision=real_torchvision)
    return network, "torchvision" if real_torchvision else "torch-fidelity's blocks"


def pytorch_fid_statistics(network: nn.Module, images: np.ndarray, batch: int, device: torch.device):
    """μ, Σ as pytorch-fid computes them: float [0, 1] NCHW batches to the device, pool features kept on the host
    (`get_activations`), then np.mean and np.cov (`calculate_activation_statistics`)."""
    activations = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.as_tensor(images[start : start + batch]).permute(0, 3, 1, 2).float() / 255
            activations.append(network(x.to(device))[0].squeeze(3).squeeze(2).cpu().numpy())
    features = np.concatenate(activations)
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def part_inception(setup: Setup, row: Row) -> None:
    from distgan.metrics.extraction import ImageSource, extract
    from distgan.metrics.fid import frechet_distance

    device, num, batch = setup.device, setup.sizes.fid_images, 50  # pytorch-fid's default batch, for both
    row.note(weights_note(setup))
    ours = inception_extractor(setup)
    theirs, how = pytorch_fid_network(pytorch_fid_layout(setup))
    sets = [synthetic_images(num, 32, seed=4, noise=8), synthetic_images(num, 32, seed=5, noise=48)]

    def ours_stats(images):
        return extract(ours, ImageSource.from_array(images), batch_size=batch, keep_logits=False).stats

    warm_up = sets[0][: min(batch, num // 2)]
    ours_stats(warm_up)  # (cuDNN, the allocator, lazily loaded kernels)
    start = time.perf_counter()
    ours_mu_sigma = [ours_stats(images).mean_and_covariance() for images in sets]
    ours_sec = time.perf_counter() - start
    fid_ours = frechet_distance(*ours_mu_sigma[0], *ours_mu_sigma[1])
    row.figure(f"distgan {per_sec(2 * num, ours_sec)}")
    if theirs is None:
        row.note(f"not compared: {how}; distgan's throughput alone (batch {batch}, FID(A, B) {fid_ours:.6g})")
        return
    theirs = theirs.to(device)
    # The same network: features of one batch in strict fp32 (tests/test_metrics_inception.py's tolerance).
    with strict_fp32(), torch.no_grad():
        x = torch.as_tensor(sets[0][: min(8, num)]).to(device)
        our_feats = ours.model.to(device).features(ours.prepare(x))
        their_feats = theirs(x.permute(0, 3, 1, 2).float() / 255)[0].flatten(1)
    check(our_feats.std(dim=0).mean() > 1e-2 * our_feats.abs().mean(), "features do not vary: a vacuous comparison")
    feature_diff = ((our_feats - their_feats).abs().max() / their_feats.abs().max()).item()
    check(feature_diff <= 1e-4, f"fp32 features differ by {feature_diff:.2e} of their scale (> 1e-4)")
    # Throughput and statistics at torch's default precision (TF32 convolutions on GPUs), in both.
    pytorch_fid_statistics(theirs, warm_up, batch, device)
    start = time.perf_counter()
    their_mu_sigma = [pytorch_fid_statistics(theirs, images, batch, device) for images in sets]
    theirs_sec = time.perf_counter() - start
    fid_theirs = frechet_distance(*their_mu_sigma[0], *their_mu_sigma[1])
    delta = abs(fid_ours - fid_theirs)
    check(delta <= 1e-3 * fid_theirs, f"ΔFID {delta:.3g} > 1e-3 × FID {fid_theirs:.6g}")
    row.figure(f"pytorch-fid {per_sec(2 * num, theirs_sec)} (distgan/pytorch-fid speed ×{theirs_sec / ours_sec:.2f})")
    row.figure(f"fp32 features: max Δ {feature_diff:.1e} of scale; FID(A, B) {fid_ours:.6g}, ΔFID {delta:.1e}")
    row.note(f"2 × {num} images 32×32, batch {batch}; pytorch-fid with {how}")


# 5. The fused (compiled) extractor against eager.


def part_fused(setup: Setup, row: Row) -> None:
    from distgan.metrics.extraction import ImageSource, extract, make_step

    device, batch = setup.device, setup.sizes.extract_batch
    if setup.rehearse:  # compiling InceptionV3 takes minutes on a CPU
        extractor = small_cnn_extractor()
        row.note("rehearsal: distgan's small CNN compiled for the CPU in place of InceptionV3 on CUDA")
    else:
        extractor = inception_extractor(setup)
        row.note(weights_note(setup))
        if not any(shutil.which(cc) for cc in (os.environ.get("CC", "cc"), "gcc", "clang")):
            row.note("no C compiler on PATH (Triton builds its kernel launcher with one)")
    images = synthetic_images(setup.sizes.fused_images, 32, seed=6)
    outputs, seconds, first_call = {}, {}, {}
    for fused in (False, True):  # eager first: make_step(fused=True) turns the model channels-last in place
        step = make_step(extractor, device, fused)
        run = dict(batch_size=batch, keep_logits=True, fused=fused, step=step)
        start = time.perf_counter()
        extract(extractor, ImageSource.from_array(images[:batch]), **run)  # compiles (fused), warms up (eager)
        first_call[fused] = time.perf_counter() - start
        start = time.perf_counter()
        outputs[fused] = extract(extractor, ImageSource.from_array(images), keep_features=True, **run)
        synchronize(device)
        seconds[fused] = time.perf_counter() - start
    eager, fused = outputs[False].feats_ND, outputs[True].feats_ND
    diff = ((fused - eager).abs().max() / eager.abs().max()).item()
    check(diff <= 1e-2, f"fused features differ from eager by {diff:.2e} of their scale (> 1e-2)")
    num = len(images)
    row.figure(f"eager {per_sec(num, seconds[False])}, fused {per_sec(num, seconds[True])} "
               f"(×{seconds[False] / seconds[True]:.2f}); compile {sec(first_call[True])}; "
               f"features: max Δ {diff:.1e} of scale")  # fmt: skip
    row.note(f"{num} images 32×32, batch {batch}; both at torch's default precision")
