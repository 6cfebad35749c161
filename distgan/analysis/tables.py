"""The report's tables as rows of numbers, from normalised results (`distgan.analysis.results`).

- Table 1 of Ravuri & Vinyals (2019): classification error when training on generated data, per knob value.
- Their Table 2 / Figure 2 numbers: training on real data plus a fraction of generated data.
- The GAN table of Shmelkov et al. (2018): per generator, its hyperparameters, IS, FID, GAN-train, GAN-test.
- Per-class accuracy of real vs best generated training data (their Figure 1), classes at 0 %.
"""

import numpy as np

from distgan.analysis.results import feature_spaces, is_number, of_experiment
from distgan.schema import QUALITY_LABELS, labelled


def quality_columns(results: list[dict]) -> list[tuple[str, str, str | None]]:
    """(key, label, std key) of every sample metric some result measured, space by space, e.g.
    ("fid[inception]", "FID (inception)", None); IS carries its std's key."""
    columns = []
    for space in feature_spaces(results):
        for metric, label in QUALITY_LABELS.items():
            key = labelled(metric, space)
            if any(is_number(r.get(key)) for r in results):
                std = labelled("inception_score_std", space) if metric == "inception_score_mean" else None
                columns.append((key, f"{label} ({space})", std))
    return columns


def _quality_values(result: dict, columns: list[tuple[str, str, str | None]]) -> dict:
    keys = [key for key, _, std in columns for key in (key, std) if key is not None]
    return {key: result.get(key) for key in keys}


def table_rows(results: list[dict]) -> list[dict]:
    """Table 1 of Ravuri & Vinyals (2019) over the replacement results: training set, knob value (τ, guidance),
    Top-5 / Top-1 error, the sample metrics of every feature space (`quality_columns`); and GAN-test accuracy
    (Shmelkov et al. 2018): the real-data classifier tested on the training set of the row."""
    keys = ("training_set", "knob", "knob_value", "top5_error", "top1_error", "gan_test_accuracy")
    columns = quality_columns(results)
    return [{key: r[key] for key in keys} | _quality_values(r, columns) for r in of_experiment(results, "replacement")]


def augmentation_rows(results: list[dict]) -> list[dict]:
    """Ravuri & Vinyals (2019) Table 2: the real row (fraction 0) and each knob value × fraction of extra generated
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
                "knob": r["knob"],
                "knob_value": r["knob_value"],
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
    """Shmelkov et al. (2018)'s table, in the NYU study's layout, over the "gan" and "gan-test" results: one row per
    trial with the generator's architecture, loss and hyperparameters, iterations trained / planned, the sample
    metrics of every feature space, GAN-train and GAN-test accuracy; sorted by the leading space's FID (lowest first;
    trials without it last, then by trial name)."""
    rows = []
    trials = of_experiment(results, "gan") + of_experiment(results, "gan-test")
    columns = quality_columns(trials)
    spaces = feature_spaces(trials)
    fid = labelled("fid", spaces[0]) if spaces else "fid"
    for r in trials:
        planned = _gan_value(r, "iterations")
        done = r["gan_iterations_done"] if r["gan_iterations_done"] is not None else planned
        rows.append(
            {
                "experiment": r["experiment"],
                "trial": r["trial"],
                "training_set": r["training_set"],
                "arch": _gan_value(r, "arch"),
                "loss": _gan_value(r, "loss"),
                "lr_d": _gan_value(r, "lr_d"),
                "lr_g": _gan_value(r, "lr_g"),
                "batch_size": _gan_value(r, "batch_size"),
                "iterations_done": done,
                "iterations": planned,
                "d_steps_schedule": _gan_value(r, "d_steps_schedule"),
                "seed": _gan_value(r, "seed"),
                "stopped_early": bool(r["stopped_early"]),
                **_quality_values(r, columns),
                "sort_fid": r.get(fid),
                "gan_train_accuracy": r["gan_train_accuracy"],
                "gan_test_accuracy": r["gan_test_accuracy"],
            }
        )

    # Lowest FID first; trials without one (e.g. stopped before it was measured) last; the name breaks ties.
    def order(row: dict) -> tuple:
        measured = is_number(row["sort_fid"])
        return (not measured, row["sort_fid"] if measured else 0.0, row["trial"])

    return sorted(rows, key=order)


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
        "best": {"knob": best["knob"], "knob_value": best["knob_value"]},
        "zero_accuracy": [
            {"knob": r["knob"], "knob_value": r["knob_value"], "class": names[k]}
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


def per_class_quality_rows(results: list[dict]) -> dict:
    """Per-class FID and KID, in every feature space, of the best generated set of the replacement results (lowest
    Top-1 error), with each class's generated and real counts; empty without one that was scored per class."""
    synthetic = [r for r in of_experiment(results, "replacement")
                 if r["training_set"] == "synthetic" and is_number(r["top1_error"]) and r["quality"]]  # fmt: skip
    if not synthetic:
        return {}
    best = min(synthetic, key=lambda r: r["top1_error"])
    spaces = [space for space, scores in best["quality"].items() if scores.get("per_class")]
    if not spaces:
        return {}
    rows = []
    for name, entry in best["quality"][spaces[0]]["per_class"].items():
        row = {"class": name, "num_samples": entry.get("num_samples"), "num_real": entry.get("num_real")}
        for space in spaces:
            scores = best["quality"][space]["per_class"].get(name, {})
            row |= {labelled("fid", space): scores.get("fid"), labelled("kid_mean", space): scores.get("kid_mean")}
        rows.append(row)
    point = {"knob": best["knob"], "knob_value": best["knob_value"]}
    return {"trial": best["trial"], **point, "spaces": spaces, "rows": rows}
