"""Utilisation profiling: an NVML sampler thread (CPU/RSS fallback), data-wait vs compute step timers,
Tune-ready summaries and `distgan profile -- <command>`. See docs/profiling.md."""

from distgan.profiling.sampler import COLUMNS, Sample, UtilisationSampler, write_csv
from distgan.profiling.summary import read_csv, summarise, write_json
from distgan.profiling.timers import StepTimer

__all__ = ["COLUMNS", "Sample", "StepTimer", "UtilisationSampler", "read_csv", "summarise", "write_csv", "write_json"]
