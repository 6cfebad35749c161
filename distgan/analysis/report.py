"""`report.md`, `report.csv` and figures of a sweep, rebuilt from its trials' result.json alone."""

import csv
import io
import math
import os
from pathlib import Path

from distgan.analysis.figures import metrics_vs_error_figure, per_class_accuracy_figure
from distgan.analysis.tables import class_analysis, correlations, load_results, table_rows

CSV_COLUMNS = (
    "training_set",
    "truncation",
    "top5_error",
    "top1_error",
    "inception_score_mean",
    "inception_score_std",
    "fid",
    "gan_test_accuracy",
)


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    return "nan" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    """Table 1 as Markdown; errors in %."""
    lines = [
        "| Training set | Truncation | Top-5 error (%) | Top-1 error (%) | IS | FID | GAN-test acc. (%) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['training_set']} | {_fmt(row['truncation'])} | {_fmt(100 * row['top5_error'])} "
            f"| {_fmt(100 * row['top1_error'])} | {_fmt(row['inception_score_mean'])} ± "
            f"{_fmt(row['inception_score_std'])} | {_fmt(row['fid'])} | {_fmt(100 * row['gan_test_accuracy'])} |"
        )
    return "\n".join(lines)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{key: row[key] for key in CSV_COLUMNS} for row in rows])
    return buffer.getvalue()


def build_report(sweep_dir: Path) -> Path:
    """Write report.md, report.csv and the PNG figures into sweep_dir; returns report.md's path."""
    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    rows = table_rows(results)
    corr = correlations(results)
    classes = class_analysis(results)
    first = results[0]
    sections = [
        f"# Sweep `{first['sweep']}` — {first['space']}",
        f"{len(results)} trials; classifier `{first['config']['classifier']['arch']}`, "
        f"{first['config']['classifier']['epochs']} epochs, {first['workers']} data-parallel workers each; "
        f"dataset `{first['config']['data']['source']}` at {first['config']['data']['image_size']} px; "
        f"tested on the real test split ({first['num_test_samples']} images).",
        "## Table 1: classification on generated data",
        markdown_table(rows),
        f"IS and FID features: {first['feature_extractor']}. FID is against the real training split; "
        "the real row's FID is that of the real test split. GAN-test: that same real-data classifier's "
        "accuracy on the training set of the row (the real row: on the real test split). "
        "Truncation τ resamples latent entries outside "
        f"[−{first['config']['sample']['truncation_factor']:g}τ, {first['config']['sample']['truncation_factor']:g}τ].",
        "## Correlation of Top-1 error with sample metrics (synthetic rows)",
        "| Metric | Pearson r (p) | Spearman ρ (p) |\n| --- | ---: | ---: |",
    ]
    for metric, label in (("fid", "FID"), ("inception_score_mean", "IS")):
        p, s = corr[f"pearson_top1_error_vs_{metric}"], corr[f"spearman_top1_error_vs_{metric}"]
        sections[-1] += (
            f"\n| {label} | {_fmt(p['r'])} ({_fmt(p['p_value'], 3)}) | {_fmt(s['r'])} ({_fmt(s['p_value'], 3)}) |"
        )
    if math.isnan(corr["pearson_top1_error_vs_fid"]["r"]):
        sections.append("(nan: a correlation needs at least 3 synthetic rows whose values vary.)")
    figures = ["metrics_vs_error.png"]
    if classes:
        lines = [f"Best truncation (lowest Top-1 error): τ = {classes['best_truncation']:g}."]
        for drop in classes.get("largest_drops", []):
            lines.append(
                f"- class `{drop['class']}`: {100 * drop['real_accuracy']:.1f} % (real) → "
                f"{100 * drop['synthetic_accuracy']:.1f} % (generated), drop {100 * drop['drop']:.1f} points"
            )
        zero = ", ".join(f"`{z['class']}` (τ = {z['truncation']:g})" for z in classes["zero_accuracy"])
        lines.append(f"\nClasses at 0 % accuracy: {zero or 'none'}.")
        sections.append("## Per-class accuracy\n\n" + "\n".join(lines))
        if "largest_drops" in classes:
            per_class_accuracy_figure(results, classes["best_truncation"], sweep_dir / "per_class_accuracy.png")
            figures.insert(0, "per_class_accuracy.png")
    if any(r["training_set"] == "synthetic" for r in results):
        metrics_vs_error_figure(results, sweep_dir / "metrics_vs_error.png")
        sections.append("## Figures\n" + "\n".join(f"![{name}]({name})" for name in figures))
        samples = [r["trial"] for r in results if (sweep_dir / "trials" / r["trial"] / "samples.png").is_file()]
        if samples:
            sections.append(
                "## Samples (one row per class)\n"
                + "\n".join(
                    f"- τ = {r['truncation']:g}: ![{r['trial']}](trials/{r['trial']}/samples.png)"
                    for r in results
                    if r["trial"] in samples
                )
            )
    _write_text_atomic(sweep_dir / "report.csv", _csv_text(rows))
    _write_text_atomic(sweep_dir / "report.md", "\n\n".join(sections) + "\n")
    return sweep_dir / "report.md"
