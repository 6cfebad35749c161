"""The metrics front door, the one library call the CLI, the sweep and the tests share:
`compute(real, fake, metrics=..., extractor=...)` → a flat dict of scores.

Sweeps (experiments/feature_spaces.py), `distgan metrics` and the shared sweep artifacts all come through here.
One extraction pass per image set gives everything the requested metrics need: streaming statistics (FID),
logits (IS), class-wise statistics (per-class FID/IS) and, only for KID, precision/recall and CMMD, the kept
features. The real side is an image set (extracted here), `RealFeatures` (extracted once and kept, as a sweep
does) or a statistics file (FID only). Metrics are registered by name (`METRICS`) with what each one needs.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from distgan.errors import ConfigError
from distgan.metrics import memorisation
from distgan.metrics.extraction import DEFAULT_MAX_KEPT_FEATURES, Extraction, ImageSource, extract
from distgan.metrics.extractors import Extractor
from distgan.metrics.inception_score import inception_score
from distgan.metrics.kid import kernel_inception_distance
from distgan.metrics.per_class import per_class_scores
from distgan.metrics.prdc import precision_recall_density_coverage
from distgan.metrics.reference_stats import ReferenceStats, cached_stats, save_pytorch_fid_npz
from distgan.runtime import distributed
from distgan.runtime.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    """Images to score, with the digest of their content (a shard manifest's sha256) when they can be cached."""

    source: ImageSource
    digest: str | None = None
    class_names: list[str] | None = None


@dataclass
class RealFeatures:
    """The real side after its one pass: statistics (overall, per class) and, for the metrics that compare
    samples (KID, precision/recall, CMMD), the kept features with their labels. A sweep keeps one per feature
    space and scores every generated set against it."""

    stats: ReferenceStats
    feats_ND: torch.Tensor | None = None
    labels_N: np.ndarray | None = None
    heldout_feats_ND: torch.Tensor | None = None  # the real test split's kept features (copy rate, C_T)


@dataclass(kw_only=True)
class MetricOptions:
    """How the metrics are computed; defaults follow torch-fidelity / the prdc paper."""

    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 5  # nearest neighbours of precision/recall/density/coverage
    copy_quantile: float = 0.01  # copy rate: the quantile of the test split's nearest-training distances
    batch_size: int = 64
    fused: bool = False  # torch.compile'd extraction (extraction.py)
    max_kept_features: int = DEFAULT_MAX_KEPT_FEATURES
    cache_dir: str | None = None  # reference statistics cache; None: no cache
    save_real_stats: str | None = None  # also write the real statistics here, in pytorch-fid's .npz layout
    local: bool = False  # extract in this process alone, with no collective (a sweep's trial driver)


@dataclass(frozen=True)
class Metric:
    """A registered metric: what it needs from the passes, and how it scores them (→ flat score keys)."""

    score: Callable[[Extraction, RealFeatures | None, MetricOptions], dict]
    needs_logits: bool = False  # the fake set's class logits (a feature space with a classifier)
    needs_features: bool = False  # per-image features of both sets, not only their statistics
    needs_real: bool = True
    needs_heldout: bool = False  # kept features of the real test split too (RealFeatures.heldout_feats_ND)
    min_fake: int = 1  # the fewest generated images it is defined for
    spaces: tuple[str, ...] | None = None  # the feature spaces it is defined in (None: any)

    def __call__(self, fake: Extraction, real: RealFeatures | None, options: MetricOptions) -> dict:
        return self.score(fake, real, options)


METRICS: Registry[Metric] = Registry("metric", "--metrics")


def _inception_score(fake: Extraction, real: RealFeatures | None, opts: MetricOptions) -> dict:
    mean, std = inception_score(fake.logits_NK, opts.is_splits)
    return {"inception_score_mean": mean, "inception_score_std": std}


def _fid(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    return {"fid": real.stats.fid_of(*fake.stats.mean_and_covariance())}  # the real side's √Σ is computed once


def kid_of(real_ND: torch.Tensor, fake_ND: torch.Tensor, opts: MetricOptions) -> dict:
    """KID with the subset size lowered to the smaller set where a set (e.g. a class) has fewer images."""
    size = min(opts.kid_subset_size, len(fake_ND), len(real_ND))
    if size < 2:
        return {}
    mean, std = kernel_inception_distance(real_ND, fake_ND, num_subsets=opts.kid_subsets, subset_size=size)
    return {"kid_mean": mean, "kid_std": std, "kid_subset_size": size}


def _kid(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    scores = kid_of(real.feats_ND, fake.feats_ND, opts)
    if scores.get("kid_subset_size", opts.kid_subset_size) < opts.kid_subset_size:
        log.warning("KID subset size lowered from %d to %d: a set has fewer images",
                    opts.kid_subset_size, scores["kid_subset_size"])  # fmt: skip
    return scores


def _precision_recall(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    return precision_recall_density_coverage(real.feats_ND, fake.feats_ND, k=opts.pr_k)


def _cmmd(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    from distgan.metrics.cmmd import cmmd

    return {"cmmd": cmmd(real.feats_ND, fake.feats_ND)}


METRICS.add("is", Metric(_inception_score, needs_logits=True, needs_real=False))
METRICS.add("fid", Metric(_fid))
METRICS.add("kid", Metric(_kid, needs_features=True))
METRICS.add("pr", Metric(_precision_recall, needs_features=True))
# CMMD's kernel bandwidth (σ = 10) and scale are those of unit-norm CLIP embeddings (Jayasumana et al. 2024).
METRICS.add("cmmd", Metric(_cmmd, needs_features=True, spaces=("clip",)))


def _copy(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    return memorisation.copy_rate(real.feats_ND, real.heldout_feats_ND, fake.feats_ND, quantile=opts.copy_quantile,
                                  device=distributed.local_device())  # fmt: skip


def _authpct(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    return memorisation.authenticity_pct(real.feats_ND, fake.feats_ND, device=distributed.local_device())


def _ct(fake: Extraction, real: RealFeatures, opts: MetricOptions) -> dict:
    return memorisation.data_copying_ct(real.feats_ND, real.heldout_feats_ND, fake.feats_ND,
                                       device=distributed.local_device())  # fmt: skip


# Memorisation of the real training split (memorisation.py); copy and ct compare with the real test split.
METRICS.add("copy", Metric(_copy, needs_features=True, needs_heldout=True))
METRICS.add("authpct", Metric(_authpct, needs_features=True))
METRICS.add("ct", Metric(_ct, needs_features=True, needs_heldout=True, min_fake=memorisation.CT_MIN_FAKES))


def parse_metrics(spec: str) -> list[str]:
    """'is,fid,kid,pr' → validated names; ConfigError naming the flag otherwise."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ConfigError(f"--metrics: unknown metric(s) {unknown or spec!r}; choose from {','.join(METRICS)}")
    return names


def _defined_in(metric: Metric, extractor: Extractor) -> bool:
    logits_ok = extractor.has_logits or not metric.needs_logits
    return logits_ok and (metric.spaces is None or extractor.name in metric.spaces)


def applicable(metrics: list[str], extractor: Extractor) -> list[str]:
    """The metrics a feature space can give: IS only where it has class logits, CMMD only in CLIP's space."""
    return [name for name in metrics if _defined_in(METRICS[name], extractor)]


def extract_real(real: ImageSet, extractor: Extractor, *, keep_features: bool, per_class: bool,
                 options: MetricOptions) -> RealFeatures:  # fmt: skip
    """The real side's one pass: statistics and, if asked or per class (when labelled), its features."""
    want_class = per_class and real.source.labels_N is not None
    x = extract(extractor, real.source, keep_logits=False, keep_features=keep_features, per_class=want_class,
                **_run_options(options))  # fmt: skip
    return RealFeatures(ReferenceStats.from_stats(x.stats), x.feats_ND, real.source.labels_N)


def _run_options(opts: MetricOptions) -> dict:
    return dict(batch_size=opts.batch_size, fused=opts.fused, max_kept_features=opts.max_kept_features,
                local=opts.local)  # fmt: skip


def _check(real, fake, metrics: list[str], extractor: Extractor, per_class: bool, opts: MetricOptions,
           real_test=None) -> None:  # fmt: skip
    """Every refusal before any extraction."""
    chosen = [METRICS.get_or_raise(name) for name in metrics]
    heldout = [name for name in metrics if METRICS[name].needs_heldout]
    if heldout and real_test is None and getattr(real, "heldout_feats_ND", None) is None:
        raise ConfigError(f"--real-test is required for {','.join(heldout)}: the real test split (shards or an image "
                          ".npz), images the generator never saw")  # fmt: skip
    if heldout and not isinstance(real_test, ImageSet | None):
        raise ConfigError(f"--real-test: {','.join(heldout)} need the test images (shards or an image .npz), not "
                          "statistics")  # fmt: skip
    if "copy" in metrics and not 0 < opts.copy_quantile < 1:
        raise ConfigError(f"--copy-quantile must be in (0, 1) (got {opts.copy_quantile})")
    for name in metrics:
        if not isinstance(fake, ReferenceStats) and fake.source.num_images < METRICS[name].min_fake:
            raise ConfigError(f"--metrics {name}: needs at least {METRICS[name].min_fake} generated images (--fake "
                              f"has {fake.source.num_images})")  # fmt: skip
    needs_real = any(m.needs_real for m in chosen) or opts.save_real_stats is not None
    if needs_real and real is None:
        raise ConfigError("--real is required for fid, kid, pr, cmmd and --save-real-stats")
    if any(m.needs_features for m in chosen) and isinstance(real, ReferenceStats):
        raise ConfigError("--real: kid, pr and cmmd need the real images (shards or an image .npz), not statistics")
    if per_class and isinstance(real, ReferenceStats):  # per-class scores come from each class's features
        raise ConfigError("--real: --per-class needs the real images (shards or an image .npz), not statistics")
    if any(m.needs_logits for m in chosen) and not extractor.has_logits:
        raise ConfigError(f"--metrics is: the {extractor.name} feature space has no class logits (its weights "
                          "have no classifier); drop 'is' or give weights with one (--inception-weights)")  # fmt: skip
    for name in metrics:
        if METRICS[name].spaces is not None and extractor.name not in METRICS[name].spaces:
            raise ConfigError(f"--metrics {name}: defined in the {' or '.join(METRICS[name].spaces)} feature space "
                              f"only (got --extractor {extractor.name})")  # fmt: skip
    if isinstance(fake, ReferenceStats) and (metrics != ["fid"] or per_class or opts.save_real_stats):
        extra = (", --per-class" if per_class else "") + (", --save-real-stats" if opts.save_real_stats else "")
        raise ConfigError(f"--fake: statistics give the overall FID only (asked for {','.join(metrics)}{extra}); "
                          "pass --metrics fid alone")  # fmt: skip
    if isinstance(fake, ReferenceStats) and not isinstance(real, ReferenceStats | ImageSet):
        raise ConfigError("--fake statistics need --real statistics or images")
    if per_class and not isinstance(fake, ReferenceStats) and fake.source.labels_N is None:
        raise ConfigError("--per-class: the fake images carry no labels")


def compute(real: ImageSet | RealFeatures | ReferenceStats | None, fake: ImageSet | ReferenceStats, *,
            metrics: list[str], extractor: Extractor, per_class: bool = False,
            options: MetricOptions | None = None, real_test: ImageSet | None = None) -> dict:  # fmt: skip
    """Scores of `fake` (IS) and of `fake` against `real` (FID, KID, precision/recall, CMMD, memorisation),
    overall and per class. Two statistics files give their FID, as `python -m pytorch_fid a.npz b.npz` does.
    `real_test`: the real test split, for the metrics that need held-out images (copy, ct), unless `real` is
    RealFeatures that already hold its features."""
    opts = options or MetricOptions()
    _check(real, fake, metrics, extractor, per_class, opts, real_test)
    out: dict = {"extractor": extractor.name}
    if isinstance(fake, ReferenceStats):
        real_stats = _real_side(real, extractor, False, False, opts, out).stats
        return out | {"fid": real_stats.fid_of(fake.mu_D, fake.sigma_DD)}
    chosen = {name: METRICS[name] for name in metrics}
    needs_feats = any(m.needs_features for m in chosen.values())
    out["num_fake"] = fake.source.num_images
    fake_x = extract(extractor, fake.source, keep_logits=extractor.has_logits and ("is" in metrics or per_class),
                     keep_features=needs_feats or per_class, per_class=per_class, **_run_options(opts))  # fmt: skip
    real_side = _real_side(real, extractor, needs_feats or per_class, per_class, opts, out)
    if any(m.needs_heldout for m in chosen.values()) and real_side.heldout_feats_ND is None:
        out["num_real_test"] = real_test.source.num_images
        heldout = extract(extractor, real_test.source, keep_logits=False, keep_features=True, **_run_options(opts))
        real_side = replace(real_side, heldout_feats_ND=heldout.feats_ND)
    if opts.save_real_stats is not None:  # the statistics of the pass above (every rank took part): no second one
        if distributed.rank() == 0:
            save_pytorch_fid_npz(opts.save_real_stats, real_side.stats)
        out["real_stats"] = opts.save_real_stats
    for metric in chosen.values():
        out |= metric(fake_x, real_side, opts)
    if per_class:
        out["per_class"] = per_class_scores(fake_x, real_side, is_splits=opts.is_splits, class_names=fake.class_names,
                                            kid=lambda r, f: kid_of(r, f, opts))  # fmt: skip
    return out


def _real_side(real, extractor: Extractor, keep_features: bool, per_class: bool, opts: MetricOptions,
               out: dict) -> RealFeatures | None:  # fmt: skip
    """The real side as RealFeatures: given, from a statistics file, from the cache, or from one pass."""
    if real is None or isinstance(real, RealFeatures):
        return real
    if isinstance(real, ReferenceStats):
        return RealFeatures(real)
    out["num_real"] = real.source.num_images
    if opts.cache_dir and real.digest and not keep_features:
        identity = {"manifest_sha256": real.digest, **extractor.cache_identity()}
        stats, out["real_stats_cache_hit"] = cached_stats(
            opts.cache_dir, identity,
            lambda: extract_real(real, extractor, keep_features=False, per_class=False, options=opts).stats,
            write=distributed.rank() == 0,
        )  # fmt: skip
        return RealFeatures(stats, None, real.source.labels_N)
    return extract_real(real, extractor, keep_features=keep_features, per_class=per_class, options=opts)


def format_table(scores: dict) -> str:
    """The scores as an aligned two-column table (per-class rows as `class/metric`)."""
    rows = [(key, value) for key, value in scores.items() if key != "per_class"]
    for name, entry in (scores.get("per_class") or {}).items():
        rows += [(f"{name}/{key}", value) for key, value in entry.items()]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}"
                     for key, value in rows)  # fmt: skip
