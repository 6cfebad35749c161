"""distgan.profiling: the CPU fallback on a real process tree, the NVML path through a fake `pynvml` module with
scripted readings (same code as the real module feeds), StepTimer, `distgan profile`, the report section."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

from distgan.analysis.utilisation import TIMELINE_PNG, utilisation_section
from distgan.errors import ConfigError, DataError
from distgan.profiling import COLUMNS, Sample, StepTimer, UtilisationSampler, proctree, read_csv, summarise, write_csv
from distgan.profiling import cli as profiling_cli
from distgan.profiling import sampler as sampler_module

REPO = Path(__file__).resolve().parents[1]
NO_GPU_LINE = "no NVIDIA GPU (NVML: "


def _nvml_error_classes():
    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 (pynvml's spelling)
        def __str__(self):
            return "NVML Shared Library Not Found"

    class NVMLError_NotSupported(NVMLError):  # noqa: N801
        pass

    return NVMLError, NVMLError_LibraryNotFound, NVMLError_NotSupported


def fake_pynvml(script: dict | None, on_exhausted=None) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's `pynvml` with the API surface the sampler uses.

    script: {device index: list of per-tick readings}; None makes nvmlInit fail as on a machine without a driver.
    After the last scripted tick of the last device, `on_exhausted()` runs (the test stops the sampler there)."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError, not_found, not_supported = _nvml_error_classes()
    nvml.NVML_CLOCK_SM, nvml.NVML_TEMPERATURE_GPU = 1, 0
    nvml.calls = []
    ticks = {index: 0 for index in script or {}}
    current = {}

    def init():
        nvml.calls.append("init")
        if script is None:
            raise not_found()

    def reading(handle):
        return current[handle]

    def utilisation(handle):
        # Utilisation is read first for each device at each tick: it moves that device to its next reading.
        value = current[handle] = script[handle][ticks[handle]]
        ticks[handle] += 1
        if handle == max(script) and ticks[handle] == len(script[handle]) and on_exhausted is not None:
            on_exhausted()
        return types.SimpleNamespace(gpu=value["util"], memory=value["mem_util"])

    def power(handle):
        if reading(handle)["power_mw"] is None:
            raise not_supported()
        return reading(handle)["power_mw"]

    def clock(handle, which):
        assert which == nvml.NVML_CLOCK_SM
        return reading(handle)["clock"]

    def temperature(handle, which):
        assert which == nvml.NVML_TEMPERATURE_GPU
        return reading(handle)["temp"]

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: len(script)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # handles are the indices
    nvml.nvmlDeviceGetHandleByUUID = lambda uuid: int(uuid.rsplit("-", 1)[1])
    nvml.nvmlDeviceGetIndex = lambda handle: handle
    nvml.nvmlDeviceGetUtilizationRates = utilisation
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=reading(h)["used_mib"] * 2**20, total=0)
    nvml.nvmlDeviceGetPowerUsage = power
    nvml.nvmlDeviceGetClockInfo = clock
    nvml.nvmlDeviceGetTemperature = temperature
    return nvml


def _tick(util, mem_util, used_mib, power_mw, clock=1980, temp=40):
    return {
        "util": util,
        "mem_util": mem_util,
        "used_mib": used_mib,
        "power_mw": power_mw,
        "clock": clock,
        "temp": temp,
    }


# Two GPUs, four ticks; GPU 1 cannot report power (NotSupported → empty cells).
SCRIPT = {
    0: [_tick(0, 0, 1024, 75000), _tick(50, 20, 30000, 450000), _tick(100, 60, 60000, 690500), _tick(30, 10, 512, 1e5)],
    1: [_tick(10, 1, 2048, None), _tick(3, 0, 2048, None), _tick(90, 40, 70000, None), _tick(60, 30, 4096, None)],
}


@pytest.fixture
def fresh_log_flag(monkeypatch):
    monkeypatch.setattr(sampler_module, "_NO_GPU_LOGGED", False)


def test_nvml_path_with_fake_pynvml(monkeypatch, tmp_path, fresh_log_flag, caplog):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = UtilisationSampler(interval_s=0.01)
    nvml = fake_pynvml(SCRIPT, on_exhausted=lambda: sampler._stop.set())  # stop right after the 4th tick
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with caplog.at_level(logging.WARNING), sampler:
        sampler._thread.join(timeout=30)
    assert sampler.kind == "gpu" and nvml.calls == ["init", "shutdown"]
    assert NO_GPU_LINE not in caplog.text
    rows = sampler.samples()
    assert [(r.device, r.util_pct) for r in rows] == [
        (f"gpu{d}", float(SCRIPT[d][t]["util"])) for t in range(4) for d in (0, 1)
    ]
    # The CSV, cell by cell: W from mW, MiB from bytes, empty where NVML said NotSupported.
    lines = sampler.write_csv(tmp_path / "profile.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert [line.split(",")[1:] for line in lines[1:4]] == [
        ["gpu0", "gpu", "0", "0", "1024", "75", "1980", "40"],
        ["gpu1", "gpu", "10", "1", "2048", "", "1980", "40"],
        ["gpu0", "gpu", "50", "20", "30000", "450", "1980", "40"],
    ]
    # Summary from the CSV read back equals the hand-computed values: pooled utilisation
    # [0, 50, 100, 30, 10, 3, 90, 60] → sorted [0, 3, 10, 30, 50, 60, 90, 100].
    summary = summarise(read_csv(tmp_path / "profile.csv"))
    assert summary == pytest.approx(summarise(rows), abs=1e-4)  # times are written to 0.1 ms
    assert summary["gpu_util_mean"] == pytest.approx(343 / 8)
    assert summary["gpu_util_p50"] == pytest.approx(40.0)  # (30 + 50) / 2
    assert summary["gpu_util_p5"] == pytest.approx(1.05)  # rank 0.35 between 0 and 3
    assert summary["gpu_util_p95"] == pytest.approx(96.5)  # rank 6.65 between 90 and 100
    assert summary["gpu_idle_frac"] == pytest.approx(2 / 8)  # 0 and 3 are under 5 %
    assert summary["gpu_mem_peak_mib"] == 70000
    assert summary["gpu_mem_util_mean"] == pytest.approx(161 / 8)
    assert summary["gpu_power_mean_w"] == pytest.approx((75 + 450 + 690.5 + 100) / 4)
    assert summary["num_gpus"] == 2 and summary["profile_num_samples"] == 8
    assert "cpu_util_mean" not in summary


def test_nvml_follows_cuda_visible_devices(monkeypatch, fresh_log_flag):
    for visible, expected in (("1", ["gpu1"]), ("GPU-fake-1,0", ["gpu1", "gpu0"])):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        sampler = UtilisationSampler(interval_s=0.01)
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(SCRIPT, on_exhausted=lambda s=sampler: s._stop.set()))
        with sampler:
            sampler._thread.join(timeout=30)
        assert sorted({r.device for r in sampler.samples()}) == sorted(expected)
    # An empty CUDA_VISIBLE_DEVICES hides every GPU (a CPU-only Ray trial): NVML is closed, the fallback runs.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    nvml = fake_pynvml(SCRIPT)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with UtilisationSampler(interval_s=0.05) as sampler:
        pass
    assert sampler.kind == "cpu" and nvml.calls == ["init", "shutdown"]


def _spawn_tree(grandchild: str) -> subprocess.Popen:
    """A parent that only waits for a grandchild running `grandchild`, in a session of their own."""
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {grandchild!r}])\n"
    return subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)


def _kill_tree(parent: subprocess.Popen) -> None:
    os.killpg(parent.pid, signal.SIGKILL)  # the whole process group: the grandchild too, not only the parent
    parent.wait()


# Burns CPU and holds 64 MiB (touched): the tree's CPU and most of its RSS are the grandchild's.
BUSY = "import time\nx = bytearray(64 << 20)\nx[::4096] = b'1' * len(x[::4096])\nt = time.time()\n"
BUSY += "while time.time() - t < 30: pass\n"


@pytest.mark.parametrize("reader", ["procfs-walk", "psutil", "procfs-scan"])
def test_cpu_fallback_samples_a_busy_process_tree(reader, monkeypatch, fresh_log_flag, caplog):
    # Without NVML (a fake pynvml whose nvmlInit fails as here; this way the test also holds on GPU machines).
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(None))
    parent = _spawn_tree(BUSY)
    try:
        waited = _wait_for_grandchild(parent.pid)
        # The other reader counts the tree's CPU time independently, beside the sampler's.
        independent = proctree.ProcfsTree(parent.pid) if reader == "psutil" else waited
        with caplog.at_level(logging.WARNING, logger=sampler_module.__name__):
            sampler = UtilisationSampler(interval_s=0.2, pid=parent.pid)
            before = independent.totals()[0]
            with monkeypatch.context() as patch:
                if reader != "procfs-walk":  # as on a kernel without /proc/<pid>/task/<tid>/children
                    patch.setattr(proctree, "children_files_available", lambda pid, proc="/proc": False)
                if reader == "procfs-scan":
                    patch.setitem(sys.modules, "psutil", None)  # `import psutil` raises ImportError
                sampler.start()
            sampler._stop.wait(2.0)
            sampler.stop()
            after = independent.totals()[0]
            with UtilisationSampler(interval_s=0.2, pid=parent.pid) as second:  # a second sampler: no second line
                second._stop.wait(0.3)
    finally:
        _kill_tree(parent)
    assert sampler.kind == "cpu"
    tree = sampler.source.tree
    assert type(tree) is (proctree.PsutilTree if reader == "psutil" else proctree.ProcfsTree)
    assert reader == "psutil" or tree.walk_children == (reader == "procfs-walk")
    lines = [r.getMessage() for r in caplog.records if NO_GPU_LINE in r.getMessage()]
    assert lines == ["no NVIDIA GPU (NVML: NVML Shared Library Not Found): recording CPU utilisation and RSS instead"]
    rows = sampler.samples()
    assert len(rows) >= 4 and all(r.kind == "cpu" and r.device == "cpu" and r.power_w is None for r in rows)
    # The utilisation integrated over time is the CPU time the tree used, as psutil counts it independently
    # (not a speed assertion: it holds however busy the shared machine is). The independent window is longer
    # by the stop after the last tick (≤ 0.2 s of one core: the tree runs one busy thread) and clock ticks.
    times = [0.0] + [r.time_s for r in rows]
    integrated = sum(r.util_pct / 100 * (t1 - t0) for r, t0, t1 in zip(rows, times[:-1], times[1:], strict=True))
    assert after - before > 0 and 0 < integrated <= after - before + 0.05
    assert integrated == pytest.approx(after - before, abs=0.3)
    summary = summarise(rows)
    assert summary["cpu_util_p95"] > 0 and summary["cpu_util_mean"] == pytest.approx(
        np.mean([r.util_pct for r in rows])
    )
    assert summary["rss_peak_mib"] > 64, summary  # the grandchild's bytearray is in the tree's RSS
    assert "gpu_util_mean" not in summary


def _wait_for_grandchild(pid: int) -> proctree.PsutilTree:
    tree, previous_rss = proctree.PsutilTree(pid), None
    for _ in range(600):  # until the grandchild has started and touched all its pages (slow on a loaded machine)
        _, rss = tree.totals()
        if rss > 64 * 2**20 and len(tree.known) == 2 and rss == previous_rss:
            return tree
        previous_rss = rss
        time.sleep(0.1)
    raise AssertionError(f"the test's process tree did not start: {tree.known}")


def test_psutil_and_procfs_readers_agree():
    # An idle tree (a waiting parent, a sleeping grandchild holding 64 MiB): both readers see the same totals.
    parent = _spawn_tree(BUSY.split("t = time.time()")[0] + "time.sleep(60)\n")
    try:
        psutil_tree, walk = _wait_for_grandchild(parent.pid), proctree.ProcfsTree(parent.pid)
        scan = proctree.ProcfsTree(parent.pid)
        scan.walk_children = False
        (cpu_a, rss_a), (cpu_b, rss_b), (cpu_c, rss_c) = psutil_tree.totals(), walk.totals(), scan.totals()
        assert len(psutil_tree.known) == 2 and rss_a > 64 * 2**20 and walk.walk_children
        # Clock ticks are 10 ms; all read /proc/<pid>/stat (psutil's RSS: /proc/<pid>/statm).
        assert cpu_b == pytest.approx(cpu_a, abs=0.05) and cpu_c == pytest.approx(cpu_a, abs=0.05)
        assert rss_b == pytest.approx(rss_a, abs=2**20) and rss_c == pytest.approx(rss_a, abs=2**20)
    finally:
        _kill_tree(parent)
    with pytest.raises(ConfigError, match="no process with pid"):
        proctree.ProcfsTree(parent.pid)
    with pytest.raises(ConfigError, match="no process with pid"):
        proctree.PsutilTree(parent.pid)


def test_sampler_stops_promptly_and_rejects_bad_interval():
    with UtilisationSampler(interval_s=60) as sampler:
        start = time.monotonic()
    sampler.stop()  # already stopped: a no-op
    assert time.monotonic() - start < 30  # Event.wait returns on stop(), not after the 60 s interval
    with pytest.raises(ConfigError, match="--interval must be > 0"):
        UtilisationSampler(interval_s=0)


def test_step_timer_splits_data_wait_from_compute(monkeypatch):
    timer = StepTimer("cpu")
    for _ in range(4):
        with timer.data():
            time.sleep(0.05)  # a slow loader
        with timer.compute():
            pass
    assert timer.num_steps == 4 and all(d >= 0.05 for d in timer.data_s)
    assert timer.data_wait_frac == pytest.approx(sum(timer.data_s) / (sum(timer.data_s) + sum(timer.compute_s)))
    assert timer.data_wait_frac > 0.5
    summary = timer.summary()
    assert summary["num_steps"] == 4 and summary["step_time_mean_s"] >= 0.05

    slow_compute = StepTimer()
    for _ in range(3):
        with slow_compute.data():
            pass
        with slow_compute.compute():
            time.sleep(0.05)
    assert slow_compute.data_wait_frac < 0.5 and all(c >= 0.05 for c in slow_compute.compute_s)

    # On CUDA, compute() synchronises before stopping its clock (kernels are asynchronous); once per step.
    import torch

    syncs = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: syncs.append(str(device)))
    cuda_timer = StepTimer("cuda:0")
    for _ in range(3):
        with cuda_timer.data():
            pass
        with cuda_timer.compute():
            pass
    assert syncs == ["cuda:0"] * 3
    for no_sync in (StepTimer(torch.device("cuda", 1), synchronize=False), StepTimer(torch.device("cpu"))):
        with no_sync.compute():
            pass
    assert len(syncs) == 3


def test_distgan_profile_end_to_end(tmp_path):
    out = tmp_path / "prof" / "profile.csv"
    busy = "import time\nt = time.time()\nwhile time.time() - t < 1.0: pass\nraise SystemExit(7)"
    done = subprocess.run(
        [sys.executable, "-m", "distgan.cli", "profile", "--interval", "0.1", "--out", str(out), "--",
         sys.executable, "-c", busy],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    rows = read_csv(out)
    assert len(rows) >= 3
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["exit_code"] == 7 and summary["profile_num_samples"] == len(rows)
    assert json.loads(done.stdout[done.stdout.index("{") :]) == summary
    kind = rows[0].kind
    # The CSV keeps 6 significant digits (a CPU reading over 100 % rounds at 1e-3): the summary is of the readings.
    assert summary[f"{kind}_util_mean"] == pytest.approx(np.mean([r.util_pct for r in rows]), rel=1e-5)


def test_profile_cli_signal_exit_code_and_errors(tmp_path, capsys):
    kill_self = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    code = profiling_cli.main(
        ["--interval", "0.05", "--out", str(tmp_path / "p.csv"), "--", sys.executable, "-c", kill_self]
    )
    assert code == 128 + 15  # as a shell reports a SIGTERM'd command
    assert json.loads((tmp_path / "p.json").read_text())["exit_code"] == -15
    assert profiling_cli.main(["--out", str(tmp_path / "q.csv")]) == 2
    assert profiling_cli.main(["--out", str(tmp_path / "q.txt"), "--", "true"]) == 2
    assert profiling_cli.main(["--", str(tmp_path / "no-such-program")]) == 2
    err = capsys.readouterr().err
    assert "no command given" in err and "--out must name a .csv" in err and "cannot start" in err


def _trial_samples(utils, kind="gpu") -> list[Sample]:
    rows = []
    for t, util in enumerate(utils):
        if kind == "gpu":
            rows.append(Sample(float(t), "gpu0", "gpu", util, 10.0, 1000.0 + t, 300.0, 1980.0, 50.0))
        else:
            rows.append(Sample(float(t), "cpu", "cpu", util, 1.0, 200.0, None, None, None))
    return rows


def test_utilisation_section(tmp_path):
    assert utilisation_section(tmp_path) is None  # no trials
    (tmp_path / "trials" / "tau-0.5").mkdir(parents=True)
    assert utilisation_section(tmp_path) is None  # trials without profiles
    write_csv(_trial_samples([0, 20, 40, 60, 80]), tmp_path / "trials" / "tau-0.5" / "profile.csv")
    (tmp_path / "trials" / "tau-0.5" / "profile.json").write_text(json.dumps({"data_wait_frac": 0.25}))
    write_csv(_trial_samples([100, 100, 2, 100], kind="cpu"), tmp_path / "trials" / "real" / "profile.csv")
    section = utilisation_section(tmp_path)
    assert section.startswith("## Utilisation")
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in section.splitlines()
             if line.startswith("| tau") or line.startswith("| real")}  # fmt: skip
    # Mean, p5, p50, p95, idle, data wait by hand: [0, 20, 40, 60, 80] and [2, 100, 100, 100].
    assert table["tau-0.5"] == ["GPU ×1", "5", "40.0", "4.0", "40.0", "76.0", "20.0 %", "25.0 %"]
    assert table["real"] == ["CPU ×1", "4", "75.5", "16.7", "100.0", "100.0", "25.0 %", "–"]
    png = tmp_path / TIMELINE_PNG
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({TIMELINE_PNG})" in section


def test_read_csv_names_the_bad_file(tmp_path):
    bad = tmp_path / "profile.csv"
    bad.write_text("time,util\n1,2\n")
    with pytest.raises(DataError, match="not a profile.csv"):
        read_csv(bad)
    bad.write_text(",".join(COLUMNS) + "\n" + textwrap.dedent("0.5,gpu0,gpu,abc,,,,,\n"))
    with pytest.raises(DataError, match=r"profile.csv:2: bad profile row"):
        read_csv(bad)
