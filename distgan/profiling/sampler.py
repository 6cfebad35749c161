"""A background thread that samples GPU utilisation through NVML, or the CPU and RSS of a process tree without it.

    with UtilisationSampler(interval_s=1.0) as sampler:
        train()
    sampler.write_csv(out_dir / "profile.csv")

With NVML (the `pynvml` module of nvidia-ml-py) every visible GPU is read at each tick: SM and memory-controller
utilisation, memory used, power, SM clock and temperature. Without it (no driver, no GPU) one log line says so and
the sampler records the CPU utilisation and resident memory of a process tree (this process by default) instead,
from /proc or psutil (proctree.py).
Both paths produce the same `Sample` rows, which `summary.py` aggregates with one code path.
"""

import csv
import io
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

from distgan.errors import ConfigError
from distgan.profiling.proctree import open_tree
from distgan.runtime.atomic import write_text_atomic

log = logging.getLogger(__name__)

# One line per process, not per sampler: a sweep starts a sampler per trial (DESIGN: "says so once").
_NO_GPU_LOGGED = False


class Sample(NamedTuple):
    """One reading of one device. GPU fields are None on CPU rows and vice versa (empty in the CSV)."""

    time_s: float  # seconds since the sampler started
    device: str  # "gpu<index>" (NVML index) or "cpu" (the process tree)
    kind: str  # "gpu" | "cpu"
    util_pct: float  # GPU: SM busy %; CPU: CPU time of the tree per wall time, % of one core (can exceed 100)
    mem_util_pct: float | None  # GPU: memory-controller busy %; CPU: RSS as % of physical memory
    mem_used_mib: float | None  # GPU: device memory used; CPU: RSS of the tree
    power_w: float | None
    sm_clock_mhz: float | None
    temperature_c: float | None


COLUMNS = Sample._fields
MIB = 1 << 20


class NvmlSource:
    """Reads every visible GPU through NVML. `pynvml` is the module object (a fake one in the tests)."""

    kind = "gpu"

    def __init__(self, pynvml) -> None:
        self.nvml = pynvml
        pynvml.nvmlInit()  # raises pynvml.NVMLError without a driver: the caller falls back
        try:
            self.devices = self._visible_devices()
        except pynvml.NVMLError:
            pynvml.nvmlShutdown()
            raise

    def _visible_devices(self) -> list[tuple[str, object]]:
        # NVML enumerates every GPU of the node; a Ray trial or a Slurm step sees only CUDA_VISIBLE_DEVICES.
        nvml = self.nvml
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return [(f"gpu{i}", nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(nvml.nvmlDeviceGetCount())]
        devices = []
        for entry in (e.strip() for e in visible.split(",") if e.strip()):  # "" hides every GPU, as for CUDA
            if entry.isdigit():
                devices.append((f"gpu{int(entry)}", nvml.nvmlDeviceGetHandleByIndex(int(entry))))
            else:  # a GPU-… UUID, as Slurm's gres and some launchers write it
                handle = nvml.nvmlDeviceGetHandleByUUID(entry)
                devices.append((f"gpu{nvml.nvmlDeviceGetIndex(handle)}", handle))
        return devices

    def _optional(self, read, scale: float = 1.0) -> float | None:
        # Power and temperature are not supported on every board (NVMLError_NotSupported): leave the cell empty.
        try:
            return read() * scale
        except self.nvml.NVMLError:
            return None

    def read(self, time_s: float) -> list[Sample]:
        nvml = self.nvml
        rows = []
        for name, handle in self.devices:
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            rows.append(
                Sample(
                    time_s=time_s,
                    device=name,
                    kind="gpu",
                    util_pct=float(rates.gpu),
                    mem_util_pct=float(rates.memory),
                    mem_used_mib=memory.used / MIB,
                    power_w=self._optional(lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h), 1e-3),  # mW → W
                    sm_clock_mhz=self._optional(lambda h=handle: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
                    temperature_c=self._optional(
                        lambda h=handle: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
                    ),
                )
            )
        return rows

    def close(self) -> None:
        self.nvml.nvmlShutdown()


class ProcessTreeSource:
    """CPU utilisation (% of one core) and RSS of a process and all its descendants (/proc or psutil)."""

    kind = "cpu"

    def __init__(self, pid: int) -> None:
        self.tree = open_tree(pid)
        self.total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MIB
        self.last: tuple[float, float] | None = None  # (wall, CPU seconds of the tree) at the previous tick

    def read(self, time_s: float) -> list[Sample]:
        totals = self.tree.totals()
        wall = time.monotonic()
        if totals is None:  # the process has exited: nothing left to measure
            return []
        cpu_s, rss = totals
        last, self.last = self.last, (wall, cpu_s)
        if last is None:
            return []  # the first tick only sets the baseline
        # Clamp: a descendant that exits unreaped, or is re-parented away, takes its time out of the total.
        util = max(0.0, cpu_s - last[1]) / max(wall - last[0], 1e-9) * 100
        rss_mib = rss / MIB
        return [Sample(time_s, "cpu", "cpu", util, 100 * rss_mib / self.total_mib, rss_mib, None, None, None)]

    def close(self) -> None:
        pass


def open_source(pid: int | None = None):
    """NVML if it initialises, else the CPU/RSS of process `pid` (default: this one) and its descendants."""
    global _NO_GPU_LOGGED
    try:
        import pynvml
    except ImportError as err:
        reason = f"pynvml not installed: {err}"
    else:
        try:
            source = NvmlSource(pynvml)
        except pynvml.NVMLError as err:  # e.g. NVMLError_LibraryNotFound: no driver on this node
            reason = str(err)
        else:
            if source.devices:
                return source
            source.close()  # a driver, but no GPU for us (e.g. a CPU-only Ray trial: CUDA_VISIBLE_DEVICES="")
            reason = f"no visible GPU, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}"
    if not _NO_GPU_LOGGED:
        log.warning("no NVIDIA GPU (NVML: %s): recording CPU utilisation and RSS instead", reason)
        _NO_GPU_LOGGED = True
    return ProcessTreeSource(os.getpid() if pid is None else pid)


class UtilisationSampler:
    """Samples every `interval_s` seconds in a daemon thread from `start()` (or `with`) until `stop()`.

    `pid`: the process tree the CPU fallback follows (default: this process). `rows` holds the `Sample`s;
    `thread_cpu_s` is the sampler thread's own CPU time once stopped (its overhead, benchmarks/bench_profiler.py).
    """

    def __init__(self, interval_s: float = 1.0, pid: int | None = None) -> None:
        if not interval_s > 0:
            raise ConfigError(f"profiling: --interval must be > 0 seconds (got {interval_s})")
        self.interval_s = interval_s
        self.pid = pid
        self.rows: list[Sample] = []
        self.kind: str | None = None  # "gpu" (NVML) or "cpu" (the fallback), once started
        self.source = None  # NvmlSource | ProcessTreeSource, once started
        self.thread_cpu_s: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> "UtilisationSampler":
        """Open NVML (or the fallback) here, in the caller, so that errors surface at once; then start the thread."""
        self.source = source = open_source(self.pid)
        self.kind = source.kind
        self._t0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(source,), name="distgan-profiler", daemon=True)
        self._thread.start()
        return self

    def _run(self, source) -> None:
        try:
            next_tick = self._t0
            while True:
                rows = source.read(time.monotonic() - self._t0)
                with self._lock:
                    self.rows.extend(rows)
                # Ticks on a fixed grid (t0 + k·interval) so that the read time does not add up into drift;
                # a tick missed on a loaded machine is skipped, not caught up.
                now = time.monotonic()
                next_tick += self.interval_s * max(1, math.ceil((now - next_tick) / self.interval_s))
                # Event.wait, not sleep: stop() wakes us at once instead of after up to one interval.
                if self._stop.wait(next_tick - now):
                    break
        except Exception:  # a failing sampler must not kill training; say why and keep what was recorded
            log.exception("profiling: the sampler stopped")
        finally:
            source.close()
            self.thread_cpu_s = time.thread_time()

    def stop(self) -> None:
        """Stop and join the thread (prompt: the wait is interrupted)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "UtilisationSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def samples(self) -> list[Sample]:
        """A copy of the rows recorded so far (safe while the thread runs)."""
        with self._lock:
            return list(self.rows)

    def write_csv(self, path: Path) -> Path:
        """Write the rows to `path` (profile.csv) atomically; returns the path."""
        return write_csv(self.samples(), path)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _row_cells(row: Sample) -> list[str]:
    # time_s with a fixed 0.1 ms resolution: 6 significant digits would round to whole seconds after a day.
    return [f"{row.time_s:.4f}", *(_cell(v) for v in row[1:])]


def write_csv(samples: list[Sample], path: Path) -> Path:
    """Samples → CSV with the `COLUMNS` header (empty cells for None), written to a temp name and renamed."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_row_cells(row) for row in samples)
    write_text_atomic(path, buffer.getvalue())
    return path
