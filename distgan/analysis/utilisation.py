"""The report's "Utilisation" section: per-trial GPU (or, without NVML, CPU) utilisation from trials/*/profile.csv,
with a timeline figure. Aggregation is distgan/profiling/summary.py's, the same that reports to Ray Tune."""

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from distgan.analysis.markdown import table  # noqa: E402
from distgan.errors import DataError  # noqa: E402
from distgan.profiling.summary import IDLE_UTIL_PCT, read_csv, summarise  # noqa: E402
from distgan.runtime.atomic import atomic_path

TIMELINE_PNG = "utilisation_timeline.png"


def _pct(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _frac(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"


def _data_wait_frac(trial_dir: Path) -> float | None:
    # profile.json is optional (written by `distgan profile` and by trials with a StepTimer).
    path = trial_dir / "profile.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("data_wait_frac")
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err


def _timeline(samples) -> tuple[np.ndarray, np.ndarray]:
    """Utilisation against time, averaged over the devices read at the same tick (one line per trial)."""
    by_time: dict[float, list[float]] = {}
    for s in samples:
        by_time.setdefault(s.time_s, []).append(s.util_pct)
    times = np.array(sorted(by_time))
    return times, np.array([np.mean(by_time[t]) for t in times])


def _timeline_figure(lines: dict[str, tuple[np.ndarray, np.ndarray]], ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    for trial, (times, util) in lines.items():
        ax.plot(times, util, label=trial, linewidth=1)
    ax.axhline(IDLE_UTIL_PCT, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("seconds since the trial's sampler started")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    if len(lines) <= 12:
        ax.legend(fontsize=7, loc="best")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def utilisation_section(sweep_dir: Path) -> str | None:
    """Markdown "## Utilisation" for the trials that have a profile.csv (and writes TIMELINE_PNG); None if none."""
    sweep_dir = Path(sweep_dir)
    rows, lines, kinds = [], {}, set()
    for csv_path in sorted(sweep_dir.glob("trials/*/profile.csv")):
        samples = read_csv(csv_path)
        if not samples:
            continue
        trial = csv_path.parent.name
        # GPU rows when the trial had NVML; the CPU fallback's rows otherwise (a trial has one kind or the other).
        kind = "gpu" if any(s.kind == "gpu" for s in samples) else "cpu"
        samples = [s for s in samples if s.kind == kind]
        kinds.add(kind)
        summary = summarise(samples)
        rows.append(
            f"| {trial} | {kind.upper()} ×{len({s.device for s in samples})} | {len(samples)} "
            f"| {_pct(summary[f'{kind}_util_mean'])} | {_pct(summary[f'{kind}_util_p5'])} "
            f"| {_pct(summary[f'{kind}_util_p50'])} | {_pct(summary[f'{kind}_util_p95'])} "
            f"| {_frac(summary[f'{kind}_idle_frac'])} | {_frac(_data_wait_frac(csv_path.parent))} |"
        )
        lines[trial] = _timeline(samples)
    if not rows:
        return None
    ylabel = {"gpu": "GPU SM utilisation (%)", "cpu": "CPU utilisation (% of one core)"}
    _timeline_figure(lines, " / ".join(ylabel[k] for k in sorted(kinds, reverse=True)), sweep_dir / TIMELINE_PNG)
    notes = []
    if "gpu" in kinds:
        notes.append("GPU: SM busy % from NVML, pooled over the trial's GPUs and samples")
    if "cpu" in kinds:
        notes.append(
            "CPU (no NVML on the node): CPU time of the classifier job's rank-0 worker and its children, % of a core"
        )
    return "\n".join(
        [
            "## Utilisation",
            "",
            f"{'; '.join(notes)}. Idle: share of samples under {IDLE_UTIL_PCT:g} %. "
            "Data wait: share of step time spent waiting for the next batch (StepTimer).",
            "",
            table("| Trial | Device | Samples | Mean % | p5 % | p50 % | p95 % | Idle | Data wait |", "llrrrrrrr", rows),
            "",
            f"![utilisation timeline]({TIMELINE_PNG})",
        ]
    )
