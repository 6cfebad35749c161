"""Peak memory of feature statistics over all 60,000 Fashion-MNIST training images with the domain extractor:
ours (streaming float64 count, Σx, Σxxᵀ: O(D²)) against keeping every feature as pytorch-fid does (an (N, D)
float32 array, then np.mean and np.cov: O(N·D)), measured in the same run.

Each way runs in a fresh process with the same data, the same extractor (small_cnn, 128-d features; random
weights with the BatchNorm statistics of the data: memory does not depend on the weight values) and the same
batches. First a warm-up pass over two batches of each way's own code (one-off library buffers: MKL, oneDNN);
then a thread samples the process's anonymous resident memory (RssAnon: heap allocations, not the library code
pages torch/MKL map in lazily, which made whole-RSS peaks swing by hundreds of MB between runs here) every
millisecond; the peak above the baseline is what the statistics cost (plus one batch's activations, alike in
both). Target: ours ≤ 1/4 of the reference.

    python benchmarks/bench_stats_memory.py [--quick]
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import REPO, SHARED_DATA, benchmark_parser

DATA = SHARED_DATA / "fashion_mnist-train.npz"


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class _PeakSampler(threading.Thread):
    """Samples RssAnon every millisecond until stopped; `peak_kb` is the largest value seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kb, self._done = _rss_kb("RssAnon"), threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, _rss_kb("RssAnon"))
            time.sleep(0.001)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak_kb, _rss_kb("RssAnon"))


def _worker(mode: str, num_images: int, batch_size: int, out: str) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO))
    from distgan.data.transforms import to_model_input
    from distgan.metrics.extraction import ImageSource, extract
    from distgan.metrics.extractors import wrap_model
    from distgan.models.classifiers import small_cnn

    with np.load(DATA) as data:
        images = data["x"][:num_images]
    torch.manual_seed(0)
    model = small_cnn(1, 10)
    model.train()
    with torch.no_grad():  # BatchNorm statistics of the data, so the features are not degenerate
        model(to_model_input(images[:2000]))
    extractor = wrap_model("domain", model.eval())

    def run(subset: np.ndarray):
        if mode == "ours":
            stats = extract(extractor, ImageSource.from_array(subset), batch_size=batch_size, keep_logits=False).stats
            return stats.mean_and_covariance()
        # pytorch-fid's get_activations + calculate_activation_statistics
        pred_arr = np.empty((len(subset), extractor.num_features), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(subset), batch_size):
                feats = extractor.model.features(to_model_input(subset[start : start + batch_size]))
                pred_arr[start : start + len(feats)] = feats.cpu().numpy()
        return np.mean(pred_arr, axis=0), np.cov(pred_arr, rowvar=False)

    run(images[: 2 * batch_size])  # warm-up of this way's own code path: one-off library buffers (MKL, oneDNN)
    baseline = _rss_kb("RssAnon")
    sampler = _PeakSampler()
    sampler.start()
    mu, sigma = run(images)
    peak = sampler.stop()
    np.savez(out, mu=mu, sigma=sigma)
    print(json.dumps({"mode": mode, "peak_above_baseline_mb": (peak - baseline) / 1024}))


def main() -> None:
    parser = benchmark_parser(__doc__, "10,000 images instead of 60,000")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "NUM_IMAGES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, num, out = args.worker
        return _worker(mode, int(num), args.batch_size, out)
    import numpy as np

    num_images = 10_000 if args.quick else 60_000
    results = {}
    for mode in ("reference", "ours"):
        out = f"/tmp/bench_stats_memory_{mode}.npz"
        done = subprocess.run([sys.executable, __file__, "--batch-size", str(args.batch_size), "--worker", mode,
                               str(num_images), out], capture_output=True, text=True, check=True)  # fmt: skip
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        with np.load(out) as data:
            results[mode]["mu"], results[mode]["sigma"] = data["mu"], data["sigma"]
    ours, ref = results["ours"]["peak_above_baseline_mb"], results["reference"]["peak_above_baseline_mb"]
    print(f"{num_images} Fashion-MNIST images, 128-d domain features, batch {args.batch_size}")
    print(f"peak memory above baseline: keep-all-features (pytorch-fid's way) {ref:.1f} MB, "
          f"streaming stats (ours) {ours:.1f} MB, ratio {ours / ref:.3f}")  # fmt: skip
    sigma_ref = results["reference"]["sigma"]
    rel = np.abs(results["ours"]["sigma"] - sigma_ref).max() / np.abs(sigma_ref).max()
    print(f"same statistics: max |Δσ| / max |σ| = {rel:.1e}")


if __name__ == "__main__":
    main()
