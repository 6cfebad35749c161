"""An ImageNet-shaped rehearsal on this machine (issue 23, item 4): 1,000 synset-named classes, 2 workers a trial on 2
GPUs declared to Ray, the domain and Inception spaces with per-class metrics, 2 knob values.

    nice timeout 3h .venv/bin/python benchmarks/rehearsal_imagenet.py      # 1,000 classes
    .venv/bin/python benchmarks/rehearsal_imagenet.py --quick               # 20 classes (tests/test_rehearsal.py)

It writes an image-folder tree (`train/<synset>/*.JPEG`, `test/<synset>/*.JPEG`: 32 px JPEGs, a seeded colour and
shape per class) and a `python` generator (class-coloured images; its knob "guidance" scales the noise), then runs a
replacement sweep in this process through `distgan.sweep.run` on `ray.init(num_cpus=2, num_gpus=2)`: Ray's
accounting of the GPUs is real, the code runs on the CPU. It prints one table: the peak RSS of the sweep driver
(this process), of each trial's driver and of each worker (every process of the Ray session is polled; a process's
peak is the kernel's high-water mark, /proc/<pid>/status VmHWM, so short peaks between polls are counted), wall time
per stage (each trial's result.json "stages"), and the shard bytes hashed (distgan/runtime/hashing.py's per-process
counter, read in every Ray worker by a setup hook that writes it every 0.2 s: a sampling rank killed right after
hashing the shard it wrote may show less). Targets beside the figures: the sweep finishes; no process above
3 GB; each trial driver below 1 GB; no shard byte hashed by the trials' scoring/classifier workers (their sets were
verified when published); every stage of every trial ran on 2 ranks. Exit 1 if a target fails.
"""

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import benchmark_parser
from PIL import Image, ImageDraw

import distgan.sweep
from distgan.generators.imagenet_synsets import IMAGENET_SYNSETS
from distgan.layout import RESULT_FILE, SweepPaths
from distgan.runtime import hashing

GB = 1e9
SHARD_SUFFIXES = (".tar", ".idx")  # shard and DALI index bytes: what verify-once must not hash again
HASH_DIR_ENV = "DISTGAN_REHEARSAL_HASH_DIR"  # where each Ray worker writes its counter (inherited through raylet)
GENERATOR = '''
"""Class-coloured 32 px images: each class its colour (as the rehearsal tree's), noise of 32/guidance levels."""
import numpy as np
import torch


class ClassColours:
    image_size, channels, knob = 32, 3, "guidance"

    def __init__(self, num_classes):
        self.colours = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (num_classes, 3))).float()

    def sample(self, labels, knob_value, generator):
        base = self.colours[labels][:, None, None, :].expand(-1, 32, 32, -1)
        noise = torch.randn(base.shape, generator=generator) * (32.0 / knob_value)
        return (base + noise).clamp(0, 255).to(torch.uint8)


def make(num_classes, device):
    return ClassColours(num_classes)
'''


def write_tree(root: Path, num_classes: int, per_split: dict[str, int], size: int = 32) -> None:
    """root/<split>/<synset>/<synset>_<i>.JPEG: the class's colour (the generator's) with a seeded shape on it, plus
    seeded noise, so that no two images are alike (the sweep refuses a test image that is also a training image)."""
    colours = np.random.default_rng(0).integers(0, 256, (num_classes, 3))
    for k, synset in enumerate(IMAGENET_SYNSETS[:num_classes]):
        rng = np.random.default_rng([1, k])
        shape_colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        for split, count in per_split.items():
            folder = root / split / synset
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = Image.new("RGB", (size, size), tuple(int(c) for c in colours[k]))
                x, y = (int(v) for v in rng.integers(0, size // 2, 2))
                box = (x, y, x + size // 3, y + size // 3)
                draw = ImageDraw.Draw(image)
                (draw.ellipse if k % 2 else draw.rectangle)(box, fill=shape_colour)
                noisy = np.asarray(image, np.int16) + rng.integers(-12, 13, (size, size, 3))
                Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{synset}_{i}.JPEG", quality=90)


def count_hashing_in_worker() -> None:
    """Ray's worker_process_setup_hook: this worker's hashing counter, written to $HASH_DIR/<pid>.json at start (so
    that a worker that hashed nothing is known to have been counted) and whenever it changes (a job's workers are
    killed, not exited, when it ends: a polling thread rather than atexit)."""
    from distgan.runtime.atomic import write_json_atomic
    from distgan.runtime.hashing import bytes_hashed

    path = Path(os.environ[HASH_DIR_ENV]) / f"{os.getpid()}.json"

    def poll() -> None:
        last = None
        while True:
            now = dict(bytes_hashed)
            if now != last:
                write_json_atomic(path, {"pid": os.getpid(), "bytes": now})
                last = now
            time.sleep(0.2)

    threading.Thread(target=poll, daemon=True, name="rehearsal-hash-counter").start()


class PeakRss:
    """Per-pid peak RSS (VmHWM) and Ray title of this process and all its descendants, polled in a thread."""

    def __init__(self, interval_s: float = 0.5):
        self.interval_s, self.peaks, self.titles = interval_s, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rehearsal-rss")

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for proc in [me, *me.children(recursive=True)]:
                try:
                    with open(f"/proc/{proc.pid}/status") as status:
                        hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
                    title = " ".join(proc.cmdline())[:60]
                except (OSError, StopIteration, psutil.Error):
                    continue  # exited since the tree was listed (or a zombie)
                self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), hwm_kb * 1024)
                if "IDLE" not in title or proc.pid not in self.titles:  # keep the title of the work it did
                    self.titles[proc.pid] = title
            self._stop.wait(self.interval_s)


def sweep_flags(tree: Path, generator: Path, results: Path, name: str) -> list[str]:
    return ["--name", name, "--results-dir", str(results), "--data.source", "image_folder", "--data.path", str(tree),
            "--data.image-size", "32", "--data.image-format", "jpeg", "--generator.kind", "python",
            "--generator.target", f"{generator}:make", "--knob-values", "1.0,2.0", "--include-real", "false",
            "--workers-per-trial", "2", "--gpus-per-worker", "1", "--cpus-per-worker", "0.5",
            "--metrics.extractors", "domain,inception", "--metrics.kid-subsets", "10", "--classifier.arch",
            "small_cnn", "--classifier.epochs", "1", "--metrics.extractor-epochs", "1"]  # fmt: skip


def read_trials(results: Path, name: str) -> dict[str, dict]:
    trials_dir = SweepPaths(results, name).trials_dir
    if not trials_dir.is_dir():
        return {}
    return {d.name: json.loads((d / RESULT_FILE).read_text()) for d in sorted(trials_dir.iterdir())
            if (d / RESULT_FILE).is_file()}  # fmt: skip


def read_hashed(hash_dir: Path) -> dict[int, dict[str, int]]:
    return {int(f.stem): json.loads(f.read_text())["bytes"] for f in hash_dir.glob("*.json")}


def shard_bytes(counts: dict[str, int]) -> int:
    return sum(counts.get(suffix, 0) for suffix in SHARD_SUFFIXES)


def summarise(rss: PeakRss, trials: dict, hashed: dict, driver_hashed: dict, wall_s: float, error: str | None) -> dict:
    """The rows of the table and the targets, as one JSON-ready dict."""
    roles: dict[int, str] = {os.getpid(): "sweep driver"}
    trial_workers: dict[str, set[int]] = {}
    for trial, result in trials.items():
        driver = result["driver"]["pid"]  # Ray Tune may reuse one trial actor's process for the next trial
        roles[driver] = f"{roles[driver]}, {trial}" if driver in roles else f"trial driver {trial}"
        for stage, record in result["stages"].items():
            for rank in record["ranks"]:
                role = roles.get(rank["pid"], f"worker {trial} rank {rank['rank']}:")
                roles[rank["pid"]] = f"{role} {stage}" if role.startswith("worker") else role
                if stage != "sample":
                    trial_workers.setdefault(trial, set()).add(rank["pid"])
    processes = [{"role": roles.get(pid, "other Ray process"), "pid": pid, "title": rss.titles.get(pid, ""),
                  "peak_rss_gb": peak / GB, "shard_bytes_hashed": shard_bytes(hashed.get(pid, {}))}
                 for pid, peak in rss.peaks.items()]  # fmt: skip
    processes[[p["pid"] for p in processes].index(os.getpid())]["shard_bytes_hashed"] = shard_bytes(driver_hashed)
    stages = [{"trial": trial, "stage": stage, "world_size": record["world_size"], "wall_time_s": record["wall_time_s"],
               "devices": sorted({rank["device"] for rank in record["ranks"]})}
              for trial, result in trials.items() for stage, record in result["stages"].items()]  # fmt: skip
    rehashed = {trial: sum(shard_bytes(hashed.get(pid, {})) for pid in pids) for trial, pids in trial_workers.items()}
    # The hook ran in each of them (a worker without a file would read as "hashed nothing" unseen).
    counted = bool(trial_workers) and all(pid in hashed for pids in trial_workers.values() for pid in pids)
    drivers = [p["peak_rss_gb"] for p in processes if p["role"].startswith("trial driver")]
    targets = {
        "finished": error is None and len(trials) == 2,
        "no process above 3 GB": max(p["peak_rss_gb"] for p in processes) < 3.0,
        "each trial driver below 1 GB": bool(drivers) and max(drivers) < 1.0,
        "0 shard bytes hashed by the trials' scoring/classifier workers": counted and not any(rehashed.values()),
        "every stage on 2 ranks": len(stages) == 4 * len(trials) > 0 and all(s["world_size"] == 2 for s in stages),
    }
    return {"wall_s": wall_s, "error": error, "processes": processes, "stages": stages, "rehashed": rehashed,
            "driver_bytes_hashed": driver_hashed, "targets": targets}  # fmt: skip


def print_table(summary: dict, num_classes: int) -> None:
    print(f"\nImageNet-shaped rehearsal: {num_classes} classes, 2 knob values, 2 workers × 1 declared GPU a trial; "
          f"sweep wall time {summary['wall_s']:.0f} s\n")  # fmt: skip
    print("| process | pid | Ray title | peak RSS | shard bytes hashed |\n| --- | --- | --- | --- | --- |")
    named = sorted((p for p in summary["processes"] if p["role"] != "other Ray process"), key=lambda p: p["role"])
    for p in named:
        cells = (p["role"], p["pid"], p["title"][:40], f"{p['peak_rss_gb']:.2f} GB", f"{p['shard_bytes_hashed']:,}")
        print("| " + " | ".join(str(c) for c in cells) + " |")
    others = [p for p in summary["processes"] if p["role"] == "other Ray process"]
    if others:
        top = max(others, key=lambda p: p["peak_rss_gb"])
        print(
            f"| {len(others)} other Ray processes (system, sweep jobs' workers, controllers) | max: {top['pid']} | "
            f"{top['title'][:40]} | {top['peak_rss_gb']:.2f} GB | {sum(p['shard_bytes_hashed'] for p in others):,} |"
        )
    print("\n| trial | stage | world size | wall time | devices |\n| --- | --- | --- | --- | --- |")
    for s in summary["stages"]:
        cells = (s["trial"], s["stage"], s["world_size"], f"{s['wall_time_s']:.1f} s", ", ".join(s["devices"]))
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print(f"\nBytes hashed by the sweep driver: {summary['driver_bytes_hashed']}; shard bytes hashed by each trial's "
          f"scoring/classifier workers: {summary['rehashed']}")  # fmt: skip
    print("\n| target | result |\n| --- | --- |")
    for target, held in summary["targets"].items():
        print(f"| {target} | {'pass' if held else 'FAIL'} |")
    if summary["error"]:
        print(f"\nThe sweep failed: {summary['error']}")


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, "20 classes instead of 1,000")
    parser.add_argument("--work-dir", type=Path, help="keep the tree and results here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures and targets to this JSON file")
    parser.add_argument("--classes", type=int, help="class folders (default 1,000; --quick: 20)")
    args = parser.parse_args(argv)
    num_classes = args.classes or (20 if args.quick else len(IMAGENET_SYNSETS))
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as scratch:
        work = args.work_dir or Path(scratch)
        tree, hash_dir, results = work / "tree", work / "hashed", work / "results"
        hash_dir.mkdir(parents=True, exist_ok=True)
        write_tree(tree, num_classes, {"train": 3, "test": 1})
        (work / "class_colours.py").write_text(GENERATOR)
        cfg, _ = distgan.sweep.parse_config(sweep_flags(tree, work / "class_colours.py", results, "rehearsal"))
        os.environ[HASH_DIR_ENV] = str(hash_dir)
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a Ray instance of this process alone, on this machine
        hashing.bytes_hashed.clear()
        import ray

        ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False,
                 runtime_env={"worker_process_setup_hook": count_hashing_in_worker})  # fmt: skip
        error, start = None, time.perf_counter()
        with PeakRss() as rss:
            try:
                distgan.sweep.run(cfg)
            except Exception as err:  # the table still shows how far it got; the target "finished" fails
                error = f"{type(err).__name__}: {err}"
            wall_s = time.perf_counter() - start
            time.sleep(1.0)  # the counters' last writes (they poll every 0.2 s)
        ray.shutdown()
        trials = read_trials(results, "rehearsal")
        summary = summarise(rss, trials, read_hashed(hash_dir), dict(hashing.bytes_hashed), wall_s, error)
    print_table(summary, num_classes)
    if args.json is not None:
        args.json.write_text(json.dumps(summary | {"num_classes": num_classes}, indent=2))
    return 0 if all(summary["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
