"""The compare space's part of the report: the leaderboard (report.md and leaderboard.csv), Kendall's τ across
generators, the figures (Top-1 error against the knob, sample metrics against Top-1 error) and a sample grid per
generator at its best knob value; numbers from `leaderboard.py`."""

import csv
import io
from pathlib import Path

from distgan.analysis import markdown as md
from distgan.analysis.correlations import CONFIDENCE_LEVEL, N_RESAMPLES
from distgan.analysis.figures import compare_error_figure, compare_metrics_figure
from distgan.analysis.leaderboard import kendall_taus, leaderboard
from distgan.analysis.results import point_text, trial_failures
from distgan.layout import LEADERBOARD_FILE, SAMPLES_FILE, SweepPaths
from distgan.runtime.atomic import write_text_atomic

ERROR_FIGURE, METRICS_FIGURE = "compare_top1_vs_knob.png", "compare_metrics_vs_top1.png"
LEVEL = f"{100 * CONFIDENCE_LEVEL:g} %"


def _interval(stat: dict) -> str:
    """Top-1 or Top-5 error in % with its interval over seeds."""
    if stat["n"] < 2:
        return f"{md.pct(stat['mean'])} (1 seed)"
    return f"{md.pct(stat['mean'])} [{md.pct(stat['low'])}, {md.pct(stat['high'])}]"


def _metric_cells(row: dict, board: dict) -> list[str]:
    cells = [f"{md.fmt(row[key])} ± {md.fmt(row[std])}" if std else md.fmt(row[key], 4 if "kid" in key else 2)
             for key, _, std in board["columns"]]  # fmt: skip
    return cells + [md.fmt(row[key], 3) for key, _ in board["memorisation"]]


def _table(board: dict) -> str:
    labels = [label for _, label, _ in board["columns"]] + [label for _, label in board["memorisation"]]
    header = (f"| Rank | Generator | Kind | sha256 | Best knob | Seeds | Top-1 error (%) [{LEVEL} CI] "
              f"| Top-5 error (%) [{LEVEL} CI] | Gap to real (points) |" + "".join(f" {label} |" for label in labels)
              + " Memorising | Top-1 interval overlaps | Failed trials |")  # fmt: skip
    body = []
    for row in board["rows"]:
        failed = "; ".join(row["failed_trials"]) or "–"
        if row["rank"] is None:
            cells = ["–", f"`{row['generator']}`", *["–"] * (9 + len(labels)), failed]
        else:
            gap = "–" if row["gap_to_real"] is None else f"{100 * row['gap_to_real']:+.2f}"
            cells = [str(row["rank"]), f"`{row['generator']}`", row["kind"] or "–", f"`{(row['sha256'] or '–')[:12]}`",
                     point_text(row), str(row["top1"]["n"]), _interval(row["top1"]), _interval(row["top5"]), gap,
                     *_metric_cells(row, board), "**yes**" if row["memorising"] else "no",
                     ", ".join(f"`{name}`" for name in row["overlaps"]) or "none", failed]  # fmt: skip
        body.append("| " + " | ".join(cells) + " |")
    return md.table(header, "rllllr" + "r" * (3 + len(labels)) + "lll", body)


def _overlap_sentences(rows: list[dict]) -> str:
    """Whether each generator's Top-1 interval overlaps the next one's in the ranking."""
    sentences = []
    for upper, lower in zip(rows, rows[1:], strict=False):
        pair = f"`{upper['generator']}` ({upper['rank']}) and `{lower['generator']}` ({lower['rank']})"
        if upper["top1"]["n"] < 2 or lower["top1"]["n"] < 2:
            sentences.append(f"{pair}: one seed, no interval (--seeds 2 or more gives one).")
        elif lower["generator"] in upper["overlaps"]:
            sentences.append(f"{pair}: Top-1 intervals overlap; these seeds do not separate them.")
        else:
            sentences.append(f"{pair}: Top-1 intervals do not overlap.")
    return " ".join(sentences)


def _intro(board: dict, first: dict) -> str:
    metrics = first["config"]["metrics"]
    ranked = [row for row in board["rows"] if row["rank"] is not None]
    memorising = [row for row in ranked if row["memorising"]]
    real = board["real"]
    real_text = f"the real rows', {_interval(real)} %" if real else "the real rows' (none: --include-real false)"
    flagged = ("**Memorising**: " + ", ".join(f"`{row['generator']}`" for row in memorising)
               + ": ranked after all others, whatever their accuracy, which says nothing about new data."
               if memorising else "No generator is memorising.")  # fmt: skip
    failed = [row for row in board["rows"] if row["failed_trials"]]
    failures = " ".join(f"**Failed**: `{row['generator']}`: {'; '.join(row['failed_trials'])}." for row in failed)
    return (
        "Each generator at its best knob value (the lowest mean Top-1 error on the real test split over "
        f"{first['config']['seeds']} classifier seed(s)), on the same real data, classifier and schedule; intervals: "
        f"Student-t {LEVEL} over seeds. Gap to real: its mean Top-1 error minus {real_text}, in points. A generator is "
        f"memorising when its copy rate exceeds {metrics['copy_rate_threshold']:g} (`--metrics.copy-rate-threshold`) "
        f"in a feature space; a held-out real set scores about {metrics['copy_quantile']:g} "
        f"(`--metrics.copy-quantile`). {flagged} {_overlap_sentences(ranked)} {failures}".rstrip()
    )


def _kendall_table(entries: list[dict]) -> str:
    header = f"| Metric (feature space) | Generators | Kendall τ (p) [{LEVEL} bootstrap CI] | Note |"
    body = [
        f"| {e['metric_label']} | {e['num_generators']} | {md.fmt(e['tau'])} ({md.fmt(e['p_value'], 3)}) "
        f"[{md.fmt(e['ci_low'])}, {md.fmt(e['ci_high'])}] | {e['reason'] or ''} |"
        for e in entries
    ]
    return md.table(header, "lrrl", body)


def _csv_text(board: dict) -> str:
    keys = [k for key, _, std in board["columns"] for k in (key, std) if k] + [k for k, _ in board["memorisation"]]
    buffer = io.StringIO()
    columns = ["rank", "generator", "kind", "weights_sha256", "knob", "best_knob_value", "seeds", "top1_error_mean",
               "top1_error_low", "top1_error_high", "top5_error_mean", "top5_error_low", "top5_error_high",
               "gap_to_real", *keys, "memorising", "top1_overlaps", "failed_trials"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in board["rows"]:
        line = {"rank": row["rank"], "generator": row["generator"], "failed_trials": "; ".join(row["failed_trials"])}
        if row["rank"] is not None:
            line |= {"kind": row["kind"], "weights_sha256": row["sha256"], "knob": row["knob"],
                     "best_knob_value": row["knob_value"], "seeds": row["top1"]["n"], "gap_to_real": row["gap_to_real"],
                     "memorising": row["memorising"], "top1_overlaps": ";".join(row["overlaps"])}  # fmt: skip
            line |= {f"{error}_error_{part}": row[error][part] for error in ("top1", "top5") for part in
                     ("mean", "low", "high")} | {key: row[key] for key in keys}  # fmt: skip
        writer.writerow(line)
    return buffer.getvalue()


def compare_sections(sweep_dir: Path, results: list[dict]) -> list[str]:
    """The compare sections of report.md; writes leaderboard.csv and the two figures into sweep_dir."""
    board = leaderboard(results, trial_failures(sweep_dir))
    write_text_atomic(sweep_dir / LEADERBOARD_FILE, _csv_text(board))
    first = next(r for r in results if r["experiment"] == "compare")
    sections = ["## Leaderboard: which generator's images train the best classifier (compare)", _intro(board, first),
                _table(board), f"Numbers: [{LEADERBOARD_FILE}]({LEADERBOARD_FILE})."]  # fmt: skip
    ranked = [row for row in board["rows"] if row["rank"] is not None]
    metric_columns = [(key, label) for key, label, _ in board["columns"]] + board["memorisation"]
    sections += [
        "## Which sample metric orders the generators as accuracy does",
        _kendall_table(kendall_taus(ranked, metric_columns)),
        "Each ranked generator at its best knob value: Kendall's τ-b (scipy.stats.kendalltau) between the metric and "
        f"the mean Top-1 error; interval: paired percentile bootstrap over generators ({N_RESAMPLES} resamples, fixed "
        "seed; resamples with a constant column dropped). τ near +1: the metric rises with the error (FID, KID: lower "
        "is better); near −1: it falls as the error rises (IS).",
    ]
    if not board["sets"]:
        return sections
    compare_error_figure(board["sets"], board["real"], sweep_dir / ERROR_FIGURE)
    compare_metrics_figure(board["sets"], metric_columns, sweep_dir / METRICS_FIGURE)  # memorisation: never empty
    trials = SweepPaths.of(sweep_dir).trials_dir
    grids = [f"- `{row['generator']}` at {point_text(row)}: ![{row['generator']}](trials/{row['trial']}/{SAMPLES_FILE})"
             for row in ranked if (trials / row["trial"] / SAMPLES_FILE).is_file()]  # fmt: skip
    sections += [
        f"## Compare figures\n![{ERROR_FIGURE}]({ERROR_FIGURE})\n![{METRICS_FIGURE}]({METRICS_FIGURE})",
        "## Samples of each generator at its best knob value (one row per class)\n" + "\n".join(grids),
    ]
    return sections
