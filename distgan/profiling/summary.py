"""Samples → Ray-Tune-ready scalars. One code path for NVML rows and CPU-fallback rows, and for rows read back
from a profile.csv (the report uses `read_csv` + `summarise` on each trial's file).

GPU rows give gpu_util_mean, gpu_util_p5/p50/p95 (SM busy %, pooled over devices and ticks), gpu_mem_util_mean,
gpu_mem_peak_mib (the largest memory used by any one device), gpu_power_mean_w and gpu_idle_frac (fraction of
readings under 5 % SM busy). CPU rows give cpu_util_mean, cpu_util_p5/p50/p95 (% of one core), cpu_idle_frac and
rss_peak_mib. A StepTimer adds data_wait_frac, num_steps and step_time_mean_s.
"""

import csv
import json
import math
from pathlib import Path

import numpy as np

from distgan.errors import DataError
from distgan.profiling.sampler import COLUMNS, Sample
from distgan.runtime.atomic import write_text_atomic

IDLE_UTIL_PCT = 5.0  # below this a reading counts as idle (NVML's SM busy % is coarse near zero)


def read_csv(path: Path) -> list[Sample]:
    """profile.csv → Samples (empty cells → None); a wrong header or a bad number names the file and line."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise DataError(f"{path}: not a profile.csv (header {header}, expected {','.join(COLUMNS)})")
        rows = []
        for line, cells in enumerate(reader, start=2):
            try:
                values = [float(c) if c != "" else None for c in cells[3:]]
                rows.append(Sample(float(cells[0]), cells[1], cells[2], *values))
            except (ValueError, TypeError, IndexError) as err:
                raise DataError(f"{path}:{line}: bad profile row {cells} ({err})") from err
    return rows


def _percentiles(prefix: str, values: list[float]) -> dict:
    if not values:
        return {}
    util = np.asarray(values, dtype=np.float64)
    p5, p50, p95 = np.percentile(util, [5, 50, 95])  # linear interpolation (numpy's default)
    return {
        f"{prefix}_util_mean": float(util.mean()),
        f"{prefix}_util_p5": float(p5),
        f"{prefix}_util_p50": float(p50),
        f"{prefix}_util_p95": float(p95),
        f"{prefix}_idle_frac": float((util < IDLE_UTIL_PCT).mean()),
    }


def _max(values) -> float:
    values = [v for v in values if v is not None]
    return float(max(values)) if values else math.nan


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def summarise(samples: list[Sample], timer=None) -> dict:
    """Aggregate samples (and a StepTimer, if given) into flat scalars; keys of an absent kind are left out."""
    gpu = [s for s in samples if s.kind == "gpu"]
    cpu = [s for s in samples if s.kind == "cpu"]
    out: dict = {"profile_num_samples": len(samples)}
    if samples:
        out["profile_duration_s"] = max(s.time_s for s in samples) - min(s.time_s for s in samples)
    if gpu:
        out |= _percentiles("gpu", [s.util_pct for s in gpu])
        out["gpu_mem_util_mean"] = _mean(s.mem_util_pct for s in gpu)
        out["gpu_mem_peak_mib"] = _max(s.mem_used_mib for s in gpu)
        out["gpu_power_mean_w"] = _mean(s.power_w for s in gpu)
        out["num_gpus"] = len({s.device for s in gpu})
    if cpu:
        out |= _percentiles("cpu", [s.util_pct for s in cpu])
        out["rss_peak_mib"] = _max(s.mem_used_mib for s in cpu)
    if timer is not None:
        out |= timer.summary()
    return out


def json_text(summary: dict) -> str:
    """The summary as strict JSON: nan (a kind without readings, an unsupported field) → null."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    return json.dumps(clean, indent=2, sort_keys=True) + "\n"


def write_json(summary: dict, path: Path) -> Path:
    """`json_text(summary)` written atomically to `path` (profile.json)."""
    path = Path(path)
    write_text_atomic(path, json_text(summary))
    return path
