"""Pearson and Spearman correlation of every sample metric with every accuracy, with p-values and paired
bootstrap 95 % confidence intervals (Ravuri & Vinyals 2019 §4 correlate IS / FID with CAS accuracy).

The intervals come from `scipy.stats.bootstrap` (SciPy's maintained implementation, resampling the
(metric, accuracy) pairs together, `paired=True`) with a fixed seed, so a report rebuilt from the same
files gives the same numbers.
"""

import math
import warnings

import numpy as np
from scipy import stats

from distgan.analysis.results import is_number, of_experiment
from distgan.analysis.tables import quality_columns
from distgan.schema import EXPERIMENTS

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE_LEVEL = 0.95
MIN_ROWS = 3  # below 3 pairs a correlation is ±1 or undefined, and its p-value meaningless

GAN_TEST = ("gan_test_accuracy", "GAN-test acc. (domain)")  # the sample metrics: this and `quality_columns`
ACCURACIES = (
    ("top1_accuracy", "Top-1 acc."),
    ("top5_accuracy", "Top-5 acc."),
    ("gan_train_accuracy", "GAN-train acc."),
)


def _value(result: dict, key: str):
    if key in ("top1_accuracy", "top5_accuracy"):
        error = result[key.replace("accuracy", "error")]
        return 1 - error if is_number(error) else None
    value = result[key]
    return value if is_number(value) else None


def _pearson_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # Vectorised over resamples; a resample whose x or y is constant has no correlation: NaN (0/0).
    xm = x - x.mean(axis=axis, keepdims=True)
    ym = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xm * ym).sum(axis=axis) / np.sqrt((xm * xm).sum(axis=axis) * (ym * ym).sum(axis=axis))


def _spearman_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # Spearman's ρ is Pearson's r of the ranks (ties: average ranks, as scipy.stats.spearmanr).
    return _pearson_along(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis=axis)


def _kendall_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # Kendall's τ-b (as scipy.stats.kendalltau, which has no axis): over the pairs, Σ sign(Δx)·sign(Δy) is C − D and
    # Σ sign(Δx)² counts the pairs not tied in x; NaN (0/0) where a column is constant. O(n²): n generators.
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    dx, dy = np.sign(x[..., :, None] - x[..., None, :]), np.sign(y[..., :, None] - y[..., None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum((-2, -1)) / np.sqrt((dx * dx).sum((-2, -1)) * (dy * dy).sum((-2, -1)))


STATISTICS = {"pearson": _pearson_along, "spearman": _spearman_along, "kendall": _kendall_along}


def bootstrap_interval(x: np.ndarray, y: np.ndarray, method: str, seed: int = BOOTSTRAP_SEED) -> dict:
    """Paired percentile bootstrap interval of Pearson's r, Spearman's ρ or Kendall's τ (`method`). Resamples in
    which a column is constant (likely with few rows: e.g. all draws the same row) have no correlation; they are
    dropped and counted, and the interval is the percentile interval of the rest. With none dropped it equals
    SciPy's."""
    statistic = STATISTICS[method]
    with warnings.catch_warnings():
        # SciPy warns about the NaN resamples that are handled here.
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (x, y),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=N_RESAMPLES,
            confidence_level=CONFIDENCE_LEVEL,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    distribution = np.asarray(res.bootstrap_distribution)
    finite = distribution[np.isfinite(distribution)]
    tail = 100 * (1 - CONFIDENCE_LEVEL) / 2
    low, high = np.percentile(finite, [tail, 100 - tail]) if finite.size else (math.nan, math.nan)
    return {
        "ci_low": float(low),
        "ci_high": float(high),
        "num_degenerate_resamples": int(distribution.size - finite.size),
    }


def _undefined(reason: str) -> dict:
    nan = {"r": math.nan, "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "num_degenerate_resamples": 0}
    return {"pearson": dict(nan), "spearman": dict(nan), "reason": reason}


def correlate(x: np.ndarray, y: np.ndarray, metric_label: str = "metric", accuracy_label: str = "accuracy") -> dict:
    """Pearson and Spearman (r, p-value, bootstrap CI) of paired columns; NaN with a reason where undefined."""
    if len(x) < MIN_ROWS:
        return _undefined(f"{len(x)} row(s) with both values; a correlation needs at least {MIN_ROWS}")
    for column, label in ((x, metric_label), (y, accuracy_label)):
        if np.ptp(column) == 0:
            return _undefined(f"{label} is constant over the {len(x)} rows")
    out = {"reason": None}
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        r, p = fn(x, y)
        out[method] = {"r": float(r), "p_value": float(p), **bootstrap_interval(x, y, method)}
    return out


def correlations(results: list[dict]) -> list[dict]:
    """Every (metric in its feature space, accuracy) pair, per experiment, over its generated-data rows where both
    are defined; a pair whose metric or accuracy no row of the experiment has is left out.

    Real-data rows are left out: their IS / FID describe the real test split, not a generator. Experiments
    are kept apart because an accuracy means something else in each (replacement: trained on generated
    data only; augmentation: real plus generated)."""
    metrics = [(key, label) for key, label, _ in quality_columns(results)] + [GAN_TEST]
    out = []
    for experiment in EXPERIMENTS:
        rows = [r for r in of_experiment(results, experiment) if r["training_set"] != "real"]
        if not rows:
            continue
        for metric, metric_label in metrics:
            for accuracy, accuracy_label in ACCURACIES:
                if all(_value(r, metric) is None for r in rows) or all(_value(r, accuracy) is None for r in rows):
                    continue  # never measured in this experiment (e.g. GAN-train under augmentation): no entry
                pairs = [(_value(r, metric), _value(r, accuracy)) for r in rows]
                pairs = [(m, a) for m, a in pairs if m is not None and a is not None]
                x = np.array([m for m, _ in pairs], dtype=np.float64)
                y = np.array([a for _, a in pairs], dtype=np.float64)
                entry = {"experiment": experiment, "metric": metric, "metric_label": metric_label,
                         "accuracy": accuracy, "num_rows": len(pairs)}  # fmt: skip
                out.append(entry | correlate(x, y, metric_label, accuracy_label))
    return out


def _absolute_interval(stat: dict) -> tuple[float, float]:
    """The interval of |ρ| from that of ρ: a metric predicts as well falling as rising (FID falls as accuracy
    rises)."""
    low, high = stat["ci_low"], stat["ci_high"]
    if low >= 0:
        return low, high
    if high <= 0:
        return -high, -low
    return 0.0, max(-low, high)


def predictor_ranking(entries: list[dict], accuracy: str = "top1_accuracy") -> list[dict]:
    """Per experiment (replacement, augmentation): every sample metric in every feature space ranked by how well
    it predicts `accuracy` across the generated sets, by |Spearman ρ| (ties: |Pearson r|). `separated`: the
    best's bootstrap interval of |ρ| lies wholly above the runner-up's (None with fewer than two ranked)."""
    out = []
    for experiment in ("replacement", "augmentation"):
        ranked = [e for e in entries if e["experiment"] == experiment and e["accuracy"] == accuracy
                  and not math.isnan(e["spearman"]["r"])]  # fmt: skip
        if not ranked:
            continue
        ranked.sort(key=lambda e: (-abs(e["spearman"]["r"]), -abs(e["pearson"]["r"]), e["metric"]))
        rows = [e | {"abs_interval": _absolute_interval(e["spearman"])} for e in ranked]
        separated = None if len(rows) < 2 else rows[0]["abs_interval"][0] > rows[1]["abs_interval"][1]
        out.append({"experiment": experiment, "accuracy": accuracy, "ranking": rows, "separated": separated})
    return out


def correlations_document(entries: list[dict], rankings: list[dict]) -> dict:
    """correlations.json: the method, every entry and the predictor ranking; NaN written as null (strict JSON),
    its reason beside it."""

    def clean(value):
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return None if isinstance(value, float) and math.isnan(value) else value

    return {
        "method": {
            "pearson": "scipy.stats.pearsonr",
            "spearman": "scipy.stats.spearmanr",
            "interval": "paired percentile bootstrap (scipy.stats.bootstrap); resamples with a constant column dropped",
            "n_resamples": N_RESAMPLES,
            "confidence_level": CONFIDENCE_LEVEL,
            "seed": BOOTSTRAP_SEED,
            "rows": "generated-data rows of each experiment where both values are defined",
        },
        "correlations": [clean(entry) for entry in entries],
        "predictor_ranking": clean(rankings),
    }
