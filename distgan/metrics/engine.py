"""The metrics front door (STYLE §1): `compute(real, fake, metrics=..., extractor=...)` → a flat dict of scores.

One extraction pass per image set gives everything the requested metrics need: streaming statistics (FID),
logits (IS), class-wise statistics (per-class FID/IS) and, only for KID and precision/recall, the kept features.
Real statistics come from a statistics file, the cache (keyed by manifest digest + extractor identity) or a pass.
"""

import logging
from dataclasses import dataclass

from distgan.errors import ConfigError
from distgan.metrics.extraction import DEFAULT_MAX_KEPT_FEATURES, ImageSource, extract
from distgan.metrics.extractors import Extractor
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score
from distgan.metrics.kid import kernel_inception_distance
from distgan.metrics.per_class import per_class_scores
from distgan.metrics.prdc import precision_recall_density_coverage
from distgan.metrics.reference_stats import ReferenceStats, cached_stats, save_pytorch_fid_npz
from distgan.runtime import distributed

log = logging.getLogger(__name__)

METRICS = ("is", "fid", "kid", "pr")


@dataclass
class ImageSet:
    """Images to score, with the digest of their content (a shard manifest's sha256) when they can be cached."""

    source: ImageSource
    digest: str | None = None
    class_names: list[str] | None = None


@dataclass(kw_only=True)
class MetricOptions:
    """How the metrics are computed; defaults follow torch-fidelity / the prdc paper."""

    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 5  # nearest neighbours of precision/recall/density/coverage
    batch_size: int = 64
    fused: bool = False  # torch.compile'd extraction (extraction.py)
    max_kept_features: int = DEFAULT_MAX_KEPT_FEATURES
    cache_dir: str | None = None  # reference statistics cache; None: no cache
    save_real_stats: str | None = None  # also write the real statistics here, in pytorch-fid's .npz layout


def parse_metrics(spec: str) -> list[str]:
    """'is,fid,kid,pr' → validated names; ConfigError naming the flag otherwise."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ConfigError(f"--metrics: unknown metric(s) {unknown or spec!r}; choose from {','.join(METRICS)}")
    return names


def compute(real: ImageSet | ReferenceStats | None, fake: ImageSet, *, metrics: list[str], extractor: Extractor,
            per_class: bool = False, options: MetricOptions | None = None) -> dict:  # fmt: skip
    """Scores of `fake` (IS) and of `fake` against `real` (FID, KID, precision/recall), overall and per class."""
    opts = options or MetricOptions()
    needs_feats = "kid" in metrics or "pr" in metrics
    needs_real = any(m in metrics for m in ("fid", "kid", "pr")) or (per_class and "fid" in metrics)
    needs_real = needs_real or opts.save_real_stats is not None
    if needs_real and real is None:
        raise ConfigError("--real is required for fid, kid, pr and --save-real-stats")
    if needs_feats and isinstance(real, ReferenceStats):
        raise ConfigError("--real: kid and pr need the real images (shards or an image .npz), not statistics")
    if per_class and fake.source.labels_N is None:
        raise ConfigError("--per-class: the fake images carry no labels")
    run = dict(batch_size=opts.batch_size, fused=opts.fused, max_kept_features=opts.max_kept_features)
    out: dict = {"extractor": extractor.name, "num_fake": fake.source.num_images}

    fake_x = extract(extractor, fake.source, keep_logits="is" in metrics, keep_features=needs_feats,
                     per_class=per_class, **run)  # fmt: skip
    real_ref, real_feats = real if isinstance(real, ReferenceStats) else None, None
    if isinstance(real, ImageSet) and needs_real:
        want_class = per_class and real.source.labels_N is not None

        def real_pass() -> ReferenceStats:
            nonlocal real_feats
            x = extract(extractor, real.source, keep_logits=False, keep_features=needs_feats,
                        per_class=want_class, **run)  # fmt: skip
            real_feats = x.feats_ND
            return ReferenceStats.from_stats(x.stats, x.class_stats)

        if opts.cache_dir and real.digest and not needs_feats:
            identity = {"manifest_sha256": real.digest, **extractor.cache_identity()}
            real_ref, hit = cached_stats(opts.cache_dir, identity, real_pass, need_per_class=want_class,
                                         write=distributed.rank() == 0)  # fmt: skip
            out["real_stats_cache_hit"] = hit
        else:
            real_ref = real_pass()
        out["num_real"] = real.source.num_images
    if opts.save_real_stats is not None:  # the statistics of the pass above (every rank took part): no second one
        if distributed.rank() == 0:
            save_pytorch_fid_npz(opts.save_real_stats, real_ref)
        out["real_stats"] = opts.save_real_stats

    if "is" in metrics:
        out["inception_score_mean"], out["inception_score_std"] = inception_score(fake_x.logits_NK, opts.is_splits)
    if "fid" in metrics:
        out["fid"] = frechet_distance(*fake_x.stats.mean_and_covariance(), real_ref.mu_D, real_ref.sigma_DD)
    if "kid" in metrics:
        size = min(opts.kid_subset_size, len(fake_x.feats_ND), len(real_feats))
        if size < opts.kid_subset_size:
            log.warning("KID subset size lowered from %d to %d: a set has fewer images", opts.kid_subset_size, size)
        out["kid_mean"], out["kid_std"] = kernel_inception_distance(
            real_feats, fake_x.feats_ND, num_subsets=opts.kid_subsets, subset_size=size
        )
        out["kid_subset_size"] = size
    if "pr" in metrics:
        out |= precision_recall_density_coverage(real_feats, fake_x.feats_ND, k=opts.pr_k)
    if per_class:
        real_classes = (real_ref.class_stats or {}) if real_ref is not None else {}
        out["per_class"] = per_class_scores(
            real_classes, fake_x.class_stats, fake_x.logits_NK, fake.source.labels_N,
            is_splits=opts.is_splits, class_names=fake.class_names)  # fmt: skip
    return out


def format_table(scores: dict) -> str:
    """The scores as an aligned two-column table (per-class rows as `class/metric`)."""
    rows = [(key, value) for key, value in scores.items() if key != "per_class"]
    for name, entry in (scores.get("per_class") or {}).items():
        rows += [(f"{name}/{key}", value) for key, value in entry.items()]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}"
                     for key, value in rows)  # fmt: skip
