"""Figures of a sweep: per-class accuracy real vs the best knob value (the paper's Figure 1), IS/FID vs Top-1 error,
Top-1 accuracy against the fraction of extra generated data (the paper's Figure 2); in the compare space, Top-1 error
against the knob per generator and each sample metric against Top-1 error coloured by generator."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from distgan.analysis.results import is_number, point_text  # noqa: E402
from distgan.runtime.atomic import atomic_path


def save_figure(fig, path: Path) -> None:
    """Write a figure as PNG atomically (temporary name, then rename) and close it."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def per_class_accuracy_figure(real: dict, best: dict, path: Path) -> None:
    """Grouped bars: per-class test accuracy of the classifier trained on real vs on the best generated set."""
    names = real["class_names"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 3.5))
    ax.bar(x - 0.2, real["per_class_accuracy"], 0.4, label="real training data")
    ax.bar(x + 0.2, best["per_class_accuracy"], 0.4, label=f"generated, {point_text(best)}")
    ax.set_xticks(x, names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("Per-class accuracy on the real test split")
    ax.legend(loc="lower right")
    save_figure(fig, path)


def metrics_vs_error_figure(results: list[dict], columns: list[tuple[str, str, str | None]], path: Path) -> None:
    """Each sample metric (one panel per metric and feature space, `tables.quality_columns`) of each synthetic set
    against the Top-1 error of its classifier, points labelled by knob value."""
    synthetic = [r for r in results if r["training_set"] == "synthetic" and is_number(r["top1_error"])]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.8), layout="constrained", squeeze=False)
    for ax, (key, label, _) in zip(axes[0], columns, strict=True):
        points = [(r[key], r["top1_error"], point_text(r)) for r in synthetic if is_number(r.get(key))]
        ax.scatter([p[0] for p in points], [p[1] for p in points])
        for value, error, text in points:
            ax.annotate(text, (value, error), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("Top-1 error (real test split)")
    fig.suptitle("Sample metrics against classification error of generated training data")
    save_figure(fig, path)


def augmentation_figure(rows: list[dict]):
    """Ravuri & Vinyals (2019) Figure 2: Top-1 accuracy (%) against the fraction of extra generated images,
    one line per knob value, the real-only classifier as a horizontal dashed line. `rows`: `augmentation_rows`.
    Returns the figure (unsaved) so that callers and tests can inspect its lines."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    real = [row for row in rows if row["training_set"] == "real" and is_number(row["top1_error"])]
    if real:
        ax.axhline(100 * (1 - real[0]["top1_error"]), color="black", linestyle="--", label="real data only")
    generated = [row for row in rows if row["training_set"] != "real"]
    for value in sorted({row["knob_value"] for row in generated}, key=lambda v: -1.0 if v is None else v):
        at_value = [row for row in generated if row["knob_value"] == value and is_number(row["top1_error"])]
        points = sorted((row["synthetic_fraction"], 100 * (1 - row["top1_error"])) for row in at_value)
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=point_text(at_value[0]))
    ax.set_xlabel("extra generated images (fraction of the real training set)")
    ax.set_ylabel("Top-1 accuracy (%) on the real test split")
    ax.set_title("Real training data augmented with generated data")
    ax.legend(loc="best", fontsize=8)
    return fig


def compare_error_figure(sets: list[dict], real: dict | None, path: Path) -> None:
    """Mean Top-1 error against the knob value, one curve per generator with its interval band over seeds
    (`leaderboard.leaderboard`'s sets); a generator without knob, and the real rows, as horizontal lines and bands."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    bands = [("real data", real, "black")] if real is not None else []
    for index, name in enumerate(dict.fromkeys(s["generator"] for s in sets)):
        color = f"C{index % 10}"
        points = sorted((s for s in sets if s["generator"] == name), key=lambda s: s["knob_value"] or 0.0)
        if points[0]["knob_value"] is None:
            bands.append((f"{name} (no knob)", points[0]["top1"], color))
            continue
        x = [s["knob_value"] for s in points]
        ax.plot(x, [100 * s["top1"]["mean"] for s in points], marker="o", color=color, label=name)
        ax.fill_between(x, [100 * s["top1"]["low"] for s in points], [100 * s["top1"]["high"] for s in points],
                        color=color, alpha=0.2)  # fmt: skip
    for label, stat, color in bands:
        ax.axhline(100 * stat["mean"], color=color, linestyle="--", label=label)
        if np.isfinite(stat["low"]):
            ax.axhspan(100 * stat["low"], 100 * stat["high"], color=color, alpha=0.1)
    ax.set_xlabel("knob value (τ, guidance scale, ...)")
    ax.set_ylabel("Top-1 error (%) on the real test split")
    ax.set_title("Classification error of each generator's images (band: 95 % interval over seeds)")
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, path)


def compare_metrics_figure(sets: list[dict], columns: list[tuple[str, str]], path: Path) -> None:
    """Each sample metric (one panel per metric and feature space) of every generated set against the mean Top-1
    error of its classifiers, points coloured by generator."""
    names = list(dict.fromkeys(s["generator"] for s in sets))
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.8), layout="constrained", squeeze=False)
    for ax, (key, label) in zip(axes[0], columns, strict=True):
        for index, name in enumerate(names):
            points = [(s[key], 100 * s["top1"]["mean"]) for s in sets if s["generator"] == name and is_number(s[key])]
            ax.scatter([p[0] for p in points], [p[1] for p in points], color=f"C{index % 10}", label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("Top-1 error (%)")
    axes[0][-1].legend(loc="best", fontsize=8)
    fig.suptitle("Sample and memorisation metrics against classification error, by generator")
    save_figure(fig, path)
