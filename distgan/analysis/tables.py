"""The report's tables as rows of numbers, from normalised results (`distgan.analysis.results`).

- Table 1 of Ravuri & Vinyals (2019): classification error when training on generated data, per τ.
- Their Table 2 / Figure 2 numbers: training on real data plus a fraction of generated data.
- The GAN table of Shmelkov et al. (2018): per generator, its hyperparameters, IS, FID, GAN-train, GAN-test.
- Per-class accuracy of real vs best generated training data (their Figure 1), classes at 0 %.
"""

import numpy as np

from distgan.analysis.results import is_number, of_experiment


def table_rows(results: list[dict]) -> list[dict]:
    """Table 1 of Ravuri & Vinyals (2019) over the replacement results: training set, τ, Top-5 / Top-1 error,
    IS ± std, FID; and GAN-test accuracy (Shmelkov et al. 2018): the real-data classifier tested on the
    training set of the row."""
    keys = (
        "training_set",
        "truncation",
        "top5_error",
        "top1_error",
        "inception_score_mean",
        "inception_score_std",
        "fid",
        "gan_test_accuracy",
    )
    return [{key: r[key] for key in keys} for r in of_experiment(results, "replacement")]


def augmentation_rows(results: list[dict]) -> list[dict]:
    """Ravuri & Vinyals (2019) Table 2: the real row (fraction 0) and each τ × fraction of extra generated
    images, with Top-1 / Top-5 error and the Top-1 accuracy gain over the real row (fraction; None without
    a real row in the augmentation results)."""
    rows = of_experiment(results, "augmentation")
    real = next((r for r in rows if r["training_set"] == "real" and is_number(r["top1_error"])), None)
    out = []
    for r in rows:
        fraction = 0.0 if r["training_set"] == "real" and r["synthetic_fraction"] is None else r["synthetic_fraction"]
        gain = None
        if real is not None and is_number(r["top1_error"]):
            gain = real["top1_error"] - r["top1_error"]  # accuracy gain = error drop
        out.append(
            {
                "trial": r["trial"],
                "training_set": r["training_set"],
                "truncation": r["truncation"],
                "synthetic_fraction": fraction,
                "top1_error": r["top1_error"],
                "top5_error": r["top5_error"],
                "top1_accuracy_gain": gain,
            }
        )
    return out


def _gan_value(result: dict, key: str):
    gan = result["gan"]
    return gan.get(key) if isinstance(gan, dict) else None


def gan_rows(results: list[dict]) -> list[dict]:
    """Shmelkov et al. (2018)'s table over the "gan" and "gan-test" results: one row per trial with the
    generator's hyperparameters, iterations trained / planned, IS ± std, FID, GAN-train and GAN-test
    accuracy; sorted by FID (lowest first; trials without FID last, then by trial name)."""
    rows = []
    for r in of_experiment(results, "gan") + of_experiment(results, "gan-test"):
        planned = _gan_value(r, "iterations")
        done = r["gan_iterations_done"] if r["gan_iterations_done"] is not None else planned
        rows.append(
            {
                "experiment": r["experiment"],
                "trial": r["trial"],
                "training_set": r["training_set"],
                "lr_d": _gan_value(r, "lr_d"),
                "lr_g": _gan_value(r, "lr_g"),
                "batch_size": _gan_value(r, "batch_size"),
                "iterations_done": done,
                "iterations": planned,
                "d_steps_schedule": _gan_value(r, "d_steps_schedule"),
                "seed": _gan_value(r, "seed"),
                "stopped_early": bool(r["stopped_early"]),
                "inception_score_mean": r["inception_score_mean"],
                "inception_score_std": r["inception_score_std"],
                "fid": r["fid"],
                "gan_train_accuracy": r["gan_train_accuracy"],
                "gan_test_accuracy": r["gan_test_accuracy"],
            }
        )
    # Lowest FID first; trials without one (e.g. stopped before it was measured) last; the name breaks ties.
    return sorted(
        rows, key=lambda row: (not is_number(row["fid"]), row["fid"] if is_number(row["fid"]) else 0.0, row["trial"])
    )


def class_analysis(results: list[dict], num_largest: int = 3) -> dict:
    """Per-class accuracy of the real row against the best synthetic row (lowest Top-1 error) of the
    replacement results: the classes that drop most, and every class that any synthetic row gets
    entirely wrong. Empty when there is no synthetic replacement row with per-class accuracy."""
    replacement = of_experiment(results, "replacement")
    real = next((r for r in replacement if r["training_set"] == "real" and r["per_class_accuracy"]), None)
    synthetic = [
        r
        for r in replacement
        if r["training_set"] == "synthetic" and r["per_class_accuracy"] and is_number(r["top1_error"])
    ]
    if not synthetic:
        return {}
    names = synthetic[0]["class_names"]
    best = min(synthetic, key=lambda r: r["top1_error"])
    analysis = {
        "best_trial": best["trial"],
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
