"""The sampler's own cost: CPU time of the sampler thread (time.thread_time, read in the thread when it stops)
against the wall time it ran, i.e. the share of one core it takes. Target: < 1 % of one core at a 1 s interval.

It samples what `distgan profile` samples: a child process tree (a parent that waits, a grandchild that spins),
so that each tick walks a real tree. Without NVML (as on CPU machines) that is the CPU/RSS fallback path; with
NVML it is the GPU path. Reference, in the same run: the fallback with psutil's reader, which reads every process
of the machine to find the tree's descendants (the default walks /proc's children files: distgan/profiling/proctree.py).

    python benchmarks/bench_profiler.py [--quick] [--seconds N]
"""

import logging
import subprocess
import sys
import time

from common import benchmark_parser

from distgan.profiling import UtilisationSampler, proctree, summarise  # noqa: E402

TARGET_FRAC = 0.01  # of one core, at 1 s


def _busy_tree(seconds: float) -> subprocess.Popen:
    child = f"import time\nt = time.time()\nwhile time.time() - t < {seconds}: pass\n"
    return subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {child!r}])"]
    )


def measure(interval_s: float, seconds: float, psutil_reader: bool = False) -> dict:
    """Run a sampler for `seconds` on a busy process tree; its thread's CPU seconds per wall second."""
    tree = _busy_tree(seconds + 5)
    try:
        sampler = UtilisationSampler(interval_s=interval_s, pid=tree.pid)
        default_check = proctree.children_files_available
        if psutil_reader:  # as on a system without /proc/<pid>/task/<tid>/children
            proctree.children_files_available = lambda pid, proc="/proc": False
        try:
            sampler.start()
        finally:
            proctree.children_files_available = default_check
        start = time.perf_counter()
        time.sleep(seconds)  # the main thread idles: only the sampler thread's CPU time is counted
        sampler.stop()
        wall = time.perf_counter() - start
    finally:
        tree.kill()
        tree.wait()
    rows = sampler.samples()
    return {
        "kind": sampler.kind,
        "reader": type(getattr(sampler.source, "tree", None)).__name__ if sampler.kind == "cpu" else "NVML",
        "interval_s": interval_s,
        "wall_s": wall,
        "thread_cpu_s": sampler.thread_cpu_s,
        "core_frac": sampler.thread_cpu_s / wall,
        # Ticks: distinct sample times, plus the CPU fallback's first tick, which only sets its baseline.
        "ticks": len({r.time_s for r in rows}) + (sampler.kind == "cpu"),
        "summary": summarise(rows),
    }


def main() -> None:
    parser = benchmark_parser(__doc__, "5 s per interval instead of 60 s")
    parser.add_argument("--seconds", type=float, help="seconds per interval (overrides --quick)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    seconds = args.seconds or (5.0 if args.quick else 60.0)
    try:
        import psutil

        num_procs = len(psutil.pids())
    except ImportError:
        num_procs = -1
    print(f"processes on this machine: {num_procs} (psutil's reader scans them all each tick)")
    results = [measure(interval, seconds) for interval in (1.0, 0.1)]
    if results[0]["kind"] == "cpu":
        results.append(measure(1.0, seconds, psutil_reader=True))
    for r in results:
        util_key = "gpu_util_mean" if r["kind"] == "gpu" else "cpu_util_mean"
        print(
            f"{r['kind']} path ({r['reader']}), interval {r['interval_s']:g} s: "
            f"sampler thread {r['thread_cpu_s'] * 1e3:.1f} ms CPU "
            f"in {r['wall_s']:.1f} s wall, {r['ticks']} ticks ({r['thread_cpu_s'] * 1e3 / r['ticks']:.2f} ms/tick) → "
            f"{100 * r['core_frac']:.3f} % of one core (ratio {r['core_frac']:.2e}); "
            f"measured tree {util_key} = {r['summary'].get(util_key, float('nan')):.1f} %"
        )
    at_1s = results[0]["core_frac"]
    verdict = "meets" if at_1s < TARGET_FRAC else "MISSES"
    print(f"at 1 s: {100 * at_1s:.3f} % of one core, {verdict} the < {100 * TARGET_FRAC:g} % target")
    if len(results) == 3:
        print(f"psutil's reader / the default reader at 1 s: {results[2]['core_frac'] / at_1s:.1f}× the CPU time")


if __name__ == "__main__":
    main()
