"""The compare space's leaderboard as numbers, from normalised results and failure records alone: each generator at
its best knob value (lowest mean Top-1 error over the classifiers' seeds), with Student-t 95 % intervals over seeds,
its sample and memorisation metrics in every feature space, memorising generators ranked after all others; and, across
generators, Kendall's τ between each sample metric and Top-1 error with a bootstrap interval.
"""

import math

import numpy as np
from scipy import stats

from distgan.analysis.correlations import CONFIDENCE_LEVEL, MIN_ROWS, bootstrap_interval
from distgan.analysis.results import feature_spaces, is_number, of_experiment
from distgan.analysis.tables import quality_columns
from distgan.schema import MEMORISATION_LABELS, labelled

ERROR_BOUNDS = (0.0, 1.0)  # an error rate's range


def t_interval(values: list[float], bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict:
    """Mean and its two-sided CONFIDENCE_LEVEL Student-t interval, x̄ ± t(n−1)·s/√n (s: sample std, ddof 1), cut to
    the quantity's `bounds` (an error rate's [0, 1]: with 2 seeds t is 12.7 and the raw interval often leaves it);
    the interval is NaN with fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    mean, low, high = float(x.mean()), math.nan, math.nan
    if len(x) >= 2:
        half = stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
    return {"mean": mean, "low": low, "high": high, "n": len(x)}


def overlap(a: dict, b: dict) -> bool | None:
    """Whether two intervals share a point; None when either is undefined (one seed)."""
    if math.isnan(a["low"]) or math.isnan(b["low"]):
        return None
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def memorisation_columns(results: list[dict]) -> list[tuple[str, str]]:
    """(key, label) of copy rate, AuthPct and C_T in every feature space some result measured them in."""
    return [(labelled(metric, space), f"{label} ({space})") for space in feature_spaces(results)
            for metric, label in MEMORISATION_LABELS.items()
            if any(is_number(r.get(labelled(metric, space))) for r in results)]  # fmt: skip


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if is_number(r.get(key))]
    return float(np.mean(values)) if values else None


def _set_summary(rows: list[dict], keys: list[str]) -> dict:
    """One generated set (a generator at a knob value) over its classifiers' seeds."""
    first = min(rows, key=lambda r: r["trial"])
    generator = first["generator"] if isinstance(first["generator"], dict) else {}
    return {
        "generator": first["generator_name"],
        "kind": generator.get("kind"),
        "sha256": generator.get("sha256"),
        "knob": first["knob"],
        "knob_value": first["knob_value"],
        "trial": first["trial"],  # its first seed's: where the set's sample grid is
        "top1": t_interval([r["top1_error"] for r in rows], ERROR_BOUNDS),
        "top5": t_interval([r["top5_error"] for r in rows if is_number(r["top5_error"])], ERROR_BOUNDS),
    } | {key: _mean(rows, key) for key in keys}


def ranked(entries: list[dict]) -> list[dict]:
    """Generators that are not memorising first, then memorising ones; within each, by mean Top-1 error (the name
    breaks ties); each with its rank and the names of the others whose Top-1 interval overlaps its own."""
    order = sorted(entries, key=lambda e: (e["memorising"], e["top1"]["mean"], e["generator"]))
    return [
        e | {"rank": rank, "overlaps": [o["generator"] for o in order if o is not e and overlap(e["top1"], o["top1"])]}
        for rank, e in enumerate(order, 1)
    ]


def leaderboard(results: list[dict], failures: dict[str, dict]) -> dict:
    """The compare results' leaderboard: `rows` (ranked generators, then failed ones with their one-line error),
    `sets` (every generator × knob value), `real` (the real rows' Top-1 interval), `columns` (sample metrics),
    `memorisation` (their columns), `threshold` (the copy rate above which a generator is memorising)."""
    compare = of_experiment(results, "compare")
    real = [r["top1_error"] for r in compare if r["training_set"] == "real" and is_number(r["top1_error"])]
    synthetic = [r for r in compare if r["training_set"] == "synthetic" and is_number(r["top1_error"])]
    columns = quality_columns(synthetic)
    memorisation = memorisation_columns(synthetic)
    keys = [key for key, _, std in columns for key in (key, std) if key] + [key for key, _ in memorisation]
    threshold = compare[0]["config"]["metrics"]["copy_rate_threshold"]
    groups: dict[str, dict] = {}
    for r in synthetic:
        groups.setdefault(r["generator_name"], {}).setdefault(r["knob_value"], []).append(r)
    sets = [_set_summary(rows, keys) for by_knob in groups.values() for rows in by_knob.values()]
    real_top1 = t_interval(real, ERROR_BOUNDS) if real else None
    entries = []
    for name in groups:
        best = min((s for s in sets if s["generator"] == name), key=lambda s: s["top1"]["mean"])
        copy_rates = [best[key] for key, _ in memorisation if key.startswith("copy_rate[") and best[key] is not None]
        gap = None if real_top1 is None else best["top1"]["mean"] - real_top1["mean"]
        entries.append(best | {"memorising": any(rate > threshold for rate in copy_rates), "gap_to_real": gap})
    failed: dict[str, list[str]] = {}
    for failure in failures.values():
        if name := failure["point"].get("generator"):  # a compare trial's (a real row's has none)
            failed.setdefault(name, []).append(f"{failure['trial']}: {failure['error']}")
    rows = ranked(entries)
    for row in rows:
        row["failed_trials"] = failed.pop(row["generator"], [])
    rows += [{"generator": name, "rank": None, "failed_trials": lines} for name, lines in failed.items()]
    return {"rows": rows, "sets": sets, "real": real_top1, "columns": columns, "memorisation": memorisation,
            "threshold": threshold}  # fmt: skip


def kendall_taus(rows: list[dict], columns: list[tuple[str, str]]) -> list[dict]:
    """Across the ranked generators, each at its best knob value: Kendall's τ between each metric and the mean Top-1
    error (p-value, percentile bootstrap interval over generators); NaN with the reason where undefined."""
    out = []
    for key, label in columns:
        pairs = [(r[key], r["top1"]["mean"]) for r in rows if r["rank"] is not None and is_number(r.get(key))]
        x, y = (np.array(column, dtype=np.float64) for column in zip(*pairs, strict=True)) if pairs else ([], [])
        entry = {"metric": key, "metric_label": label, "num_generators": len(pairs), "tau": math.nan,
                 "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "reason": None}  # fmt: skip
        if len(pairs) < MIN_ROWS:
            entry["reason"] = f"{len(pairs)} generator(s) with both values; τ needs at least {MIN_ROWS}"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            entry["reason"] = f"{label if np.ptp(x) == 0 else 'Top-1 error'} is constant over the generators"
        else:
            result = stats.kendalltau(x, y)
            entry |= {"tau": float(result.statistic), "p_value": float(result.pvalue)}
            entry |= bootstrap_interval(x, y, "kendall")
        out.append(entry)
    return out
