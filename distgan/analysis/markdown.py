"""The Markdown sections of report.md, one function per table; numbers come from `tables` and `correlations`."""

import math

from distgan.analysis.correlations import ACCURACIES, CONFIDENCE_LEVEL, N_RESAMPLES
from distgan.analysis.results import is_number, point_text
from distgan.schema import knob_header

LABELS = dict(ACCURACIES)


def fmt(value, digits: int = 2) -> str:
    """A number with `digits` decimals; '–' for not measured (None), 'nan' for undefined."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def table(header: str, alignment: str, rows: list[str]) -> str:
    """A Markdown table: `header` '| A | B |', `alignment` one letter a column ('l' left, 'r' right), body rows."""
    rule = "| " + " | ".join({"l": "---", "r": "---:"}[a] for a in alignment) + " |"
    return "\n".join([header, rule, *rows])


def pct(value, digits: int = 2) -> str:
    """A fraction as a percentage (no sign); '–' when not measured."""
    return fmt(100 * value if is_number(value) else value, digits)


def quality_cells(row: dict, columns: list[tuple[str, str, str | None]]) -> str:
    """The sample-metric cells of a row, `tables.quality_columns` order; IS as mean ± std."""
    cells = [f"{fmt(row[key])} ± {fmt(row[std])}" if std else fmt(row[key], 4 if "kid" in key else 2)
             for key, _, std in columns]  # fmt: skip
    return "".join(f" {cell} |" for cell in cells)


def quality_header(columns: list[tuple[str, str, str | None]]) -> str:
    return "".join(f" {label} |" for _, label, _ in columns)


def table1(rows: list[dict], columns: list[tuple[str, str, str | None]], knob: str | None) -> str:
    """Table 1 of Ravuri & Vinyals (2019) as Markdown, a column for the generator's knob (`knob_header`), one per
    sample metric and feature space (labelled, e.g. 'FID (inception)'); errors and accuracies in %."""
    header = f"| Training set | {knob_header(knob)} | Top-5 error (%) | Top-1 error (%) |" + quality_header(columns)
    body = [
        f"| {row['training_set']} | {fmt(row['knob_value'])} | {pct(row['top5_error'])} "
        f"| {pct(row['top1_error'])} |{quality_cells(row, columns)} {pct(row['gan_test_accuracy'])} |"
        for row in rows
    ]
    return table(header + " GAN-test acc. (%) |", "lrrr" + "r" * len(columns) + "r", body)


def augmentation_table(rows: list[dict], knob: str | None) -> str:
    """Ravuri & Vinyals (2019) Table 2: real + a fraction of generated data; gain in Top-1 accuracy points."""
    header = (
        f"| Training set | {knob_header(knob)} | Extra generated (fraction) | Top-1 error (%) | Top-5 error (%) "
        "| Top-1 acc. gain over real (points) |"
    )
    body = []
    for row in rows:
        gain = row["top1_accuracy_gain"]
        gain_text = "–" if gain is None else f"{100 * gain:+.2f}"
        body.append(
            f"| {row['training_set']} | {fmt(row['knob_value'])} | {fmt(row['synthetic_fraction'])} "
            f"| {pct(row['top1_error'])} | {pct(row['top5_error'])} | {gain_text} |"
        )
    return table(header, "lrrrrr", body)


def gan_table(rows: list[dict], columns: list[tuple[str, str, str | None]]) -> str:
    """Shmelkov et al. (2018) in the NYU study's summary layout: one row per generator (architecture, loss, learning
    rates of D and G, batch size, iterations, D:G schedule, seed, IS, FID and the other sample metrics of every
    feature space, GAN-train, GAN-test in %), sorted by FID. Iterations: those trained, "done / planned" when ASHA
    stopped the trial before its end."""
    header = (
        "| Experiment | Trial | Arch | Loss | lr D | lr G | Batch | Iterations | D:G schedule | Seed |"
        + quality_header(columns)
        + " GAN-train (%) | GAN-test (%) |"
    )
    body = []
    for row in rows:
        lr_d = "–" if row["lr_d"] is None else f"{row['lr_d']:.2e}"
        lr_g = "–" if row["lr_g"] is None else f"{row['lr_g']:.2e}"
        done = "–" if row["iterations_done"] is None else str(row["iterations_done"])
        planned = "–" if row["iterations"] is None else str(row["iterations"])
        iterations = done if done == planned else f"{done} / {planned}"
        stopped = " (stopped early)" if row["stopped_early"] else ""
        body.append(
            f"| {row['experiment']} | `{row['trial']}` | {row['arch'] or '–'} | {row['loss'] or '–'} | {lr_d} | {lr_g} "
            f"| {row['batch_size'] or '–'} | {iterations}{stopped} | {row['d_steps_schedule'] or '–'} "
            f"| {'–' if row['seed'] is None else row['seed']} |{quality_cells(row, columns)}"
            f" {pct(row['gan_train_accuracy'])} | {pct(row['gan_test_accuracy'])} |"
        )
    return table(header, "llllrrrrlr" + "r" * len(columns) + "rr", body)


def _with_interval(stat: dict, digits: int = 2) -> str:
    interval = f"[{fmt(stat['ci_low'], digits)}, {fmt(stat['ci_high'], digits)}]"
    return f"{fmt(stat['r'], digits)} ({fmt(stat['p_value'], 3)}) {interval}"


def correlation_table(entries: list[dict]) -> str:
    """Every (experiment, metric, accuracy) entry: r (p) [95 % CI] for Pearson and Spearman, and why NaN."""
    level = f"{100 * CONFIDENCE_LEVEL:g} %"
    header = (
        f"| Experiment | Metric | Accuracy | Rows | Pearson r (p) [{level} CI] | Spearman ρ (p) [{level} CI] | Note |"
    )
    body = []
    for e in entries:
        degenerate = max(e["pearson"]["num_degenerate_resamples"], e["spearman"]["num_degenerate_resamples"])
        note = e["reason"] or (f"{degenerate} of {N_RESAMPLES} resamples degenerate" if degenerate else "")
        body.append(
            f"| {e['experiment']} | {e['metric_label']} | {LABELS[e['accuracy']]} | {e['num_rows']} "
            f"| {_with_interval(e['pearson'])} | {_with_interval(e['spearman'])} | {note} |"
        )
    return table(header, "lllrrrl", body)


def class_section(classes: dict) -> str:
    """The classes that lose most accuracy with the best generated set, and those that any set gets entirely wrong."""
    lines = [f"Best generated set (lowest Top-1 error): {point_text(classes['best'])}."]
    for drop in classes.get("largest_drops", []):
        lines.append(
            f"- class `{drop['class']}`: {100 * drop['real_accuracy']:.1f} % (real) → "
            f"{100 * drop['synthetic_accuracy']:.1f} % (generated), drop {100 * drop['drop']:.1f} points"
        )
    zero = ", ".join(f"`{z['class']}` ({point_text(z)})" for z in classes["zero_accuracy"])
    lines.append(f"\nClasses at 0 % accuracy: {zero or 'none'}.")
    return "## Per-class accuracy (replacement)\n\n" + "\n".join(lines)


def trial_label(result: dict) -> str:
    """How a trial is named beside its sample grid: knob value (and fraction) where it has them, else its name."""
    parts = []
    if is_number(result["knob_value"]):
        parts.append(point_text(result))
    if is_number(result["synthetic_fraction"]) and result["training_set"] != "real":
        parts.append(f"fraction {result['synthetic_fraction']:g}")
    return f"{result['experiment']} `{result['trial']}`" + (f" ({', '.join(parts)})" if parts else "")


def predictor_section(rankings: list[dict]) -> str:
    """Which sample metric, in which feature space, predicts Top-1 accuracy best, experiment by experiment; said
    plainly, with whether the bootstrap intervals separate the best from the runner-up."""
    level = f"{100 * CONFIDENCE_LEVEL:g} %"
    parts = ["## Which metric predicts usefulness"]
    for ranking in rankings:
        rows, experiment = ranking["ranking"], ranking["experiment"]
        header = (f"| Rank | Metric (feature space) | Rows | Spearman ρ (p) [{level} CI] | Pearson r (p) [{level} CI] "
                  r"| \|ρ\| interval |")  # fmt: skip
        body = [
            f"| {rank} | {e['metric_label']} | {e['num_rows']} | {_with_interval(e['spearman'])} "
            f"| {_with_interval(e['pearson'])} | [{fmt(e['abs_interval'][0])}, {fmt(e['abs_interval'][1])}] |"
            for rank, e in enumerate(rows, 1)
        ]
        best = rows[0]
        verdict = (f"**{experiment}**: {best['metric_label']} predicts Top-1 accuracy best "
                   f"(|ρ| = {abs(best['spearman']['r']):.2f} over {best['num_rows']} generated sets).")  # fmt: skip
        if ranking["separated"] is None:
            verdict += " It is the only metric with a defined correlation."
        elif ranking["separated"]:
            verdict += f" Its interval of |ρ| lies above that of the runner-up, {rows[1]['metric_label']}: resolved."
        else:
            verdict += (f" Its interval of |ρ| overlaps that of the runner-up, {rows[1]['metric_label']}: these "
                        "generated sets do not separate them; more knob values or seeds would.")  # fmt: skip
        parts += [verdict, table(header, "rlrrrr", body)]
    return "\n\n".join(parts)


def per_class_quality_table(per_class: dict) -> str:
    """Per-class FID and KID beside the counts they rest on, for the best generated set (`per_class_quality_rows`)."""
    spaces = per_class["spaces"]
    header = "| Class | Generated | Real |" + "".join(f" FID ({space}) | KID ({space}) |" for space in spaces)
    body = []
    for row in per_class["rows"]:
        cells = "".join(f" {fmt(row[f'fid[{s}]'])} | {fmt(row[f'kid_mean[{s}]'], 4)} |" for s in spaces)
        body.append(f"| `{row['class']}` | {row['num_samples'] or '–'} | {row['num_real'] or '–'} |{cells}")
    title = f"## Per-class FID and KID (replacement, best set: {point_text(per_class)})"
    return title + "\n\n" + table(header, "lrr" + "rr" * len(spaces), body)
