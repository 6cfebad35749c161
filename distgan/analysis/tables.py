"""The paper's Table 1 and the correlations of sample metrics with classification error, from result files."""

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from distgan.errors import DataError


def load_results(sweep_dir: Path) -> list[dict]:
    """Every trials/*/result.json of a sweep, the real row first, then by truncation."""
    paths = sorted(Path(sweep_dir).glob("trials/*/result.json"))
    if not paths:
        raise DataError(f"{sweep_dir}: no trials/*/result.json to report on")
    results = [json.loads(path.read_text()) for path in paths]
    return sorted(results, key=lambda r: (r["truncation"] is not None, r["truncation"] or 0.0))


def table_rows(results: list[dict]) -> list[dict]:
    """Table 1 of Ravuri & Vinyals (2019): training set, τ, Top-5 / Top-1 error, IS ± std, FID; and
    GAN-test accuracy (Shmelkov et al. 2018): the real-data classifier tested on the training set."""
    return [
        {
            "training_set": r["training_set"],
            "truncation": r["truncation"],
            "top5_error": r["top5_error"],
            "top1_error": r["top1_error"],
            "inception_score_mean": r["inception_score_mean"],
            "inception_score_std": r["inception_score_std"],
            "fid": r["fid"],
            "gan_test_accuracy": r["gan_test_accuracy"],
        }
        for r in results
    ]


def correlations(results: list[dict]) -> dict:
    """Pearson and Spearman correlation (with p-values) of Top-1 error with FID and with IS over the
    synthetic rows; NaN where fewer than 3 rows or a constant column make it undefined."""
    synthetic = [r for r in results if r["training_set"] == "synthetic"]
    error = np.array([r["top1_error"] for r in synthetic])
    out = {}
    for metric in ("fid", "inception_score_mean"):
        values = np.array([r[metric] for r in synthetic])
        defined = len(synthetic) >= 3 and np.ptp(values) > 0 and np.ptp(error) > 0
        for name, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
            r, p = fn(values, error) if defined else (math.nan, math.nan)
            out[f"{name}_top1_error_vs_{metric}"] = {"r": float(r), "p_value": float(p), "num_rows": len(synthetic)}
    return out


def class_analysis(results: list[dict], num_largest: int = 3) -> dict:
    """Per-class accuracy of the real row against the best synthetic row (lowest Top-1 error): the
    classes that drop most, and every class that any synthetic row gets entirely wrong."""
    real = next((r for r in results if r["training_set"] == "real"), None)
    synthetic = [r for r in results if r["training_set"] == "synthetic"]
    if not synthetic:
        return {}
    names = synthetic[0]["class_names"]
    best = min(synthetic, key=lambda r: r["top1_error"])
    analysis = {
        "best_truncation": best["truncation"],
        "zero_accuracy": [
            {"truncation": r["truncation"], "class": names[k]}
            for r in synthetic
            for k, acc in enumerate(r["per_class_accuracy"])
            if acc == 0.0
        ],
    }
    if real is not None:
        drops = np.array(real["per_class_accuracy"]) - np.array(best["per_class_accuracy"])
        order = np.argsort(-drops, kind="stable")[:num_largest]
        analysis["largest_drops"] = [
            {
                "class": names[k],
                "real_accuracy": real["per_class_accuracy"][k],
                "synthetic_accuracy": best["per_class_accuracy"][k],
                "drop": float(drops[k]),
            }
            for k in order
        ]
    return analysis
