"""`report.md`, `report.csv`, `correlations.json` and the PNG figures of a results directory, rebuilt from
its trials' result.json alone. Sections appear only for the experiments present."""

import csv
import io
import json
from pathlib import Path

from distgan.analysis import markdown as md
from distgan.analysis.correlations import (
    CONFIDENCE_LEVEL,
    N_RESAMPLES,
    correlations,
    correlations_document,
    predictor_ranking,
)
from distgan.analysis.figures import (
    augmentation_figure,
    metrics_vs_error_figure,
    per_class_accuracy_figure,
    save_figure,
)
from distgan.analysis.results import feature_spaces, load_results, of_experiment, trials_without_result
from distgan.analysis.tables import (
    augmentation_rows,
    class_analysis,
    gan_rows,
    per_class_quality_rows,
    quality_columns,
    table_rows,
)
from distgan.analysis.utilisation import utilisation_section
from distgan.runtime.atomic import write_text_atomic
from distgan.schema import CSV_COLUMNS, GAN_FIELDS, QUALITY_SCORES, SAMPLES_NAME, labelled

FIGURE_ORDER = ("per_class_accuracy.png", "metrics_vs_error.png", "augmentation.png")


def csv_row(result: dict, columns: list[str]) -> dict:
    """One report.csv row of a result: its numbers, the generator's hyperparameters as gan_* columns, and its
    sample metrics as labelled columns (e.g. fid[inception])."""
    gan = result["gan"] if isinstance(result["gan"], dict) else {}
    row = {key: result.get(key) for key in columns}
    row |= {f"gan_{key}": gan.get(key) for key in GAN_FIELDS}
    return row


def _csv_text(results: list[dict]) -> str:
    spaces = feature_spaces(results)
    columns = [*CSV_COLUMNS, *(labelled(metric, space) for space in spaces for metric in QUALITY_SCORES)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(r, columns) for r in results)
    return buffer.getvalue()


def _header(results: list[dict]) -> list[str]:
    first = results[0]
    cfg = first["config"]
    sweeps = sorted({r["sweep"] for r in results})
    experiments = list(dict.fromkeys(r["experiment"] for r in results))
    workers = f", {first['workers']} data-parallel workers each" if first["workers"] else ""
    tested = f" ({first['num_test_samples']} images)" if first["num_test_samples"] else ""
    return [
        f"# Sweep `{'`, `'.join(sweeps)}` — {', '.join(experiments)}",
        f"{len(results)} trials; classifier `{cfg['classifier']['arch']}`, {cfg['classifier']['epochs']} epochs"
        f"{workers}; dataset `{cfg['data']['source']}` at {cfg['data']['image_size']} px; "
        f"tested on the real test split{tested}.",
    ]


def _spaces_note(first: dict) -> str:
    described = first["feature_spaces"] or {"domain": {"description": "the domain classifier"}}
    return "Feature spaces: " + "; ".join(f"**{name}**: {info['description']}" for name, info in described.items())


def _replacement_sections(results: list[dict], first: dict) -> list[str]:
    factor = first["config"]["sample"]["truncation_factor"]
    real = next((r for r in results if r["training_set"] == "real" and r["real_row_splits"]), None)
    return [
        "## Table 1: classification on generated data (replacement)",
        md.table1(table_rows(results), quality_columns(of_experiment(results, "replacement"))),
        f"{_spaces_note(first)}. Each sample metric is labelled with its feature space. FID and KID are against "
        f"the real training split; the real row: {real['real_row_splits'] if real else 'not measured'}. "
        "GAN-test: the domain classifier's accuracy on the training set of the row (the real row: on the real test "
        f"split). Truncation τ resamples latent entries outside [−{factor:g}τ, {factor:g}τ].",
    ]


def build_report(sweep_dir: Path, *, extra_sections: list[str | None] | None = None) -> Path:
    """Write report.md, report.csv, correlations.json and the PNG figures into sweep_dir from its
    trials/*/result.json alone; returns report.md's path. The "## Utilisation" section (trials' profile.csv)
    comes last when a trial was profiled; `extra_sections`: more Markdown sections after it (None: skipped)."""
    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    sections = _header(results)
    figures = []
    replacement = of_experiment(results, "replacement")
    if replacement:
        sections += _replacement_sections(results, replacement[0])
    augmentation = augmentation_rows(results)
    if augmentation:
        sections += [
            "## Augmentation: real data plus generated data (Table 2)",
            md.augmentation_table(augmentation),
            "Fraction: extra generated images as a fraction of the real training set (0: the real row). "
            "Gain: Top-1 accuracy minus that of the real row, in percentage points.",
        ]
        if any(row["training_set"] != "real" for row in augmentation):
            save_figure(augmentation_figure(augmentation), sweep_dir / "augmentation.png")
            figures.append("augmentation.png")
    gan = gan_rows(results)
    if gan:
        sections += [
            "## GANs: hyperparameters, sample metrics, GAN-train and GAN-test",
            md.gan_table(gan, quality_columns(of_experiment(results, "gan") + of_experiment(results, "gan-test"))),
            "GAN-train: a classifier trained on the generator's images only, tested on real test images; "
            "GAN-test: a classifier trained on real images, tested on the generator's images (Shmelkov et "
            "al. 2018). Sorted by the first feature space's FID. Trials stopped early (ASHA) were not trained to the "
            "end.",
        ]
    entries = correlations(results)
    if entries:
        sections += [
            "## Correlations of sample metrics with accuracy",
            md.correlation_table(entries),
            "Generated-data rows of each experiment where both values exist (pairs never measured in an "
            "experiment, e.g. GAN-train under augmentation, are left out). r (p-value) "
            f"[{100 * CONFIDENCE_LEVEL:g} % paired bootstrap interval, {N_RESAMPLES} resamples, fixed seed]; "
            "nan where undefined (the note says why). Numbers: correlations.json.",
        ]
    rankings = predictor_ranking(entries)
    if rankings:
        sections += [
            md.predictor_section(rankings),
            "Each sample metric in each feature space, ranked by |Spearman ρ| with the Top-1 accuracy of classifiers "
            "trained on the generated sets (replacement) or on real plus generated sets (augmentation). Resolved: "
            "the best's bootstrap interval of |ρ| lies wholly above the runner-up's.",
        ]
    per_class = per_class_quality_rows(results)
    if per_class:
        sections += [
            md.per_class_quality_table(per_class),
            "Per-class FID is biased upwards at small counts (Ravuri & Vinyals 2019, Figure 1); KID is unbiased: "
            "read them together, with the counts.",
        ]
    classes = class_analysis(results)
    if classes:
        sections.append(md.class_section(classes))
        if "largest_drops" in classes:
            real = next(r for r in replacement if r["training_set"] == "real" and r["per_class_accuracy"])
            best = next(r for r in replacement if r["trial"] == classes["best_trial"])
            per_class_accuracy_figure(real, best, sweep_dir / "per_class_accuracy.png")
            figures.append("per_class_accuracy.png")
    columns = quality_columns(replacement)
    if columns and any(r["training_set"] == "synthetic" for r in replacement):
        metrics_vs_error_figure(replacement, columns, sweep_dir / "metrics_vs_error.png")
        figures.append("metrics_vs_error.png")
    if figures:
        figures.sort(key=FIGURE_ORDER.index)  # the paper's order: Figure 1, metrics vs error, Figure 2
        sections.append("## Figures\n" + "\n".join(f"![{name}]({name})" for name in figures))
    samples = [r for r in results if (sweep_dir / "trials" / r["trial"] / SAMPLES_NAME).is_file()]
    if samples:
        sections.append(
            "## Samples (one row per class)\n"
            + "\n".join(f"- {md.trial_label(r)}: ![{r['trial']}](trials/{r['trial']}/{SAMPLES_NAME})" for r in samples)
        )
    unfinished = trials_without_result(sweep_dir)
    if unfinished:
        sections.append(
            "## Trials without a result\n"
            f"No result.json (failed, stopped before writing, or still running): {', '.join(unfinished)}."
        )
    sections += [s for s in (utilisation_section(sweep_dir), *(extra_sections or [])) if s]
    write_text_atomic(sweep_dir / "report.csv", _csv_text(results))
    document = correlations_document(entries, rankings)
    write_text_atomic(sweep_dir / "correlations.json", json.dumps(document, indent=2) + "\n")
    write_text_atomic(sweep_dir / "report.md", "\n\n".join(sections) + "\n")
    return sweep_dir / "report.md"
