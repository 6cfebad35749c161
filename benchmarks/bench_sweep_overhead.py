"""What Ray Tune costs the `--quick` replacement sweep, against the same work in one process without Ray.

1. The whole sweep (the claim, target ≤ 1.10): `tune/sweep.py --quick` with one worker per trial and one trial at
   a time, against `--one-process` (this script: the same shared artifacts, trials and report, no Ray), each a
   fresh process on an empty cache, rounds alternating. Interpreter start, imports, Ray's start and stop count;
   `--recipe digits_default` compares the main job instead (about 8 minutes a run).
2. The trials alone, on warm caches, in this process's Ray: Tune's fixed cost against three short trials, one at
   a time (the strictest ratio), and on the whole machine (Tune's 1-CPU trials at once against 2 threads).
3. From `Tuner.fit()` to the first training step of its trial's job: run in the trial's process, and through a
   Ray Train TorchTrainer (what trials of several workers start).
4. The fixed costs no sweep through Ray Tune escapes: starting and stopping Ray on this machine, and a trial's
   process (Tune starts a fresh one per sweep) importing what the trial runs.

    python benchmarks/bench_sweep_overhead.py [--quick] [--rounds 2] [--recipe digits_quick] [--results-dir DIR]

--quick: one round, and trials of one truncation and one epoch in part 2 (about 4 minutes; default about 8).
"""

import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import ray  # noqa: E402
import torch  # noqa: E402
from common import REPO, benchmark_parser
from ray import tune  # noqa: E402

from distgan.analysis.report import build_report  # noqa: E402
from distgan.config import SweepConfig, to_dict  # noqa: E402
from distgan.experiments.artifacts import prepare_real_shards, prepare_sweep  # noqa: E402
from distgan.experiments.classifier import TrainingSet  # noqa: E402
from distgan.experiments.spaces import REAL_ROW, SPACES, synthetic_point  # noqa: E402
from distgan.experiments.sweep import run_sweep  # noqa: E402
from distgan.experiments.synthetic import resolve_generator  # noqa: E402
from distgan.experiments.trial import run_classification_trial, trial_name  # noqa: E402
from distgan.layout import SweepPaths  # noqa: E402
from distgan.recipes import RECIPES  # noqa: E402
from distgan.runtime.atomic import write_json_atomic  # noqa: E402
from distgan.train.launch import Launch, run_data_parallel  # noqa: E402

ONE_AT_A_TIME = ("--workers-per-trial", "1", "--cpus-per-worker", "1", "--max-concurrent-trials", "1")
RECIPE_FLAGS = {name: ("--recipe", name) for name in RECIPES}  # how tune/sweep.py picks each recipe
# What a trial's process imports before its first step (torch._dynamo: torch.optim's first optimiser).
TRIAL_IMPORTS = "import ray.tune, torch, torch._dynamo, distgan.experiments.trial, distgan.train.engine"


def sweep_config(recipe: str, results_dir: Path) -> SweepConfig:
    """`tune/sweep.py` with the recipe's flag and the ONE_AT_A_TIME flags, as a config (its knob values resolved)."""
    cfg = replace(RECIPES[recipe](), results_dir=results_dir, workers_per_trial=1, cpus_per_worker=1.0,
                  max_concurrent_trials=1)  # fmt: skip
    return resolve_generator(cfg, prepare_real_shards(cfg).train_dir)[0]


def run_trials(cfg: SweepConfig, artifacts) -> None:
    """The replacement trials one after another in this process, into the sweep's trial directories."""
    assert cfg.workers_per_trial == 1  # every job of a trial in this process, as a one-worker trial runs them
    for point in [REAL_ROW, *map(synthetic_point, cfg.knob_values)]:
        name = trial_name("replacement", {"point": point}, "", "truncation")
        directory = SweepPaths(cfg.results_dir, cfg.name).trial_dir(name)
        training = TrainingSet(experiment="replacement", real=point["real"], knob_value=point["knob_value"])
        run_classification_trial(cfg, artifacts, training, generator=artifacts.generator, trial_dir=directory)


def one_process_sweep(recipe: str, results_dir: Path) -> None:
    """What `run_sweep` does, without Ray: the shared artifacts (made here, as a local one-worker sweep's driver
    makes them), the trials on one thread (a 1-CPU trial's), the report. It imports Ray Tune as distgan's trial
    module does (about 0.5 s)."""
    cfg = sweep_config(recipe, results_dir)
    paths = SweepPaths(cfg.results_dir, cfg.name)
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.config_file, to_dict(cfg))
    artifacts = prepare_sweep(cfg, prepare_real_shards(cfg), generator=None)
    torch.set_num_threads(1)
    run_trials(cfg, artifacts)
    build_report(cfg.out_dir)


def timed_process(argv: list[str], log: Path) -> float:
    """Wall seconds of a fresh process, from its start to its exit; raises if it fails."""
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}); see {log}")
    return time.perf_counter() - started


def whole_sweeps(recipe: str, results_dir: Path, rounds: int) -> dict[str, list[float]]:
    """Part 1: both ways from an empty cache, `rounds` times, alternating."""
    runs = {
        "one-process": [sys.executable, __file__, "--one-process", "--recipe", recipe],
        "tune-sweep": [sys.executable, "tune/sweep.py", *RECIPE_FLAGS[recipe], *ONE_AT_A_TIME],
    }
    seconds = {name: [] for name in runs}
    for round_ in range(rounds):
        for name, argv in runs.items():
            where = results_dir / "whole" / name
            shutil.rmtree(where, ignore_errors=True)
            where.parent.mkdir(parents=True, exist_ok=True)
            seconds[name].append(timed_process([*argv, "--results-dir", str(where)], where.with_suffix(".log")))
            print(f"  round {round_ + 1}, {name}: {seconds[name][-1]:.1f} s", flush=True)
    return seconds


def plain_trials(cfg: SweepConfig, artifacts) -> float:
    """Part 2's reference: the trials one after another in this process, then the report; seconds."""
    started = time.perf_counter()
    run_trials(cfg, artifacts)
    build_report(cfg.out_dir)
    return time.perf_counter() - started


def tuned_trials(cfg: SweepConfig) -> float:
    started = time.perf_counter()
    run_sweep(cfg, SPACES["replacement"](cfg), prepare_real_shards(cfg), generator=None)
    return time.perf_counter() - started


def trials_alone(results_dir: Path, quick: bool) -> dict[str, float]:
    """Part 2, in this process's Ray, on artifacts cached before any timing."""
    cfg = sweep_config("digits_quick", results_dir / "warm")
    if quick:
        cfg = replace(cfg, knob_values=(1.0,), classifier=replace(cfg.classifier, epochs=1, warmup_fraction=0.0))
    artifacts = prepare_sweep(cfg, prepare_real_shards(cfg), generator=None)
    warmup = replace(cfg, name="warmup", classifier=replace(cfg.classifier, epochs=1, warmup_fraction=0.0))
    plain_trials(warmup, artifacts)  # samples the synthetic sets: every run below finds them cached
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = {"plain, 1 thread": plain_trials(replace(cfg, name="plain-1"), artifacts)}
    torch.set_num_threads(threads)
    rows["tune, 1 trial at a time"] = tuned_trials(replace(cfg, name="tuned-1"))
    rows["plain, 2 threads"] = plain_trials(replace(cfg, name="plain-2", cpus_per_worker=2.0), artifacts)
    rows["tune, trials at once"] = tuned_trials(replace(cfg, name="tuned-2", max_concurrent_trials=0))
    return rows


def _first_step(config: dict) -> None:
    """A data-parallel job whose whole work is one optimiser step; notes when the step is done."""
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # a fresh process imports torch._dynamo here
    model(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    Path(config["path"]).write_text(repr(time.time()))


def first_step_latency(tmp: Path, in_trial: bool) -> float:
    """Seconds from `Tuner.fit()` to the first training step of its one trial's job: the trial's process starts
    (Tune gives every sweep a fresh one), imports, and runs the job itself (`in_trial`) or as a TorchTrainer."""

    def trial(_: dict) -> None:
        launch = Launch(workers=1, cpus_per_worker=1, gpus_per_worker=0, storage_dir=tmp / "train",
                        in_tune_trial=False, in_process=in_trial)  # fmt: skip
        run_data_parallel(_first_step, {"path": str(tmp / "first_step")}, launch=launch, name="probe")

    name = f"probe-{'in-trial' if in_trial else 'torchtrainer'}"
    started = time.time()
    tune.Tuner(trial, run_config=tune.RunConfig(name=name, storage_path=str(tmp / "tune"))).fit()
    return float((tmp / "first_step").read_text()) - started


def fresh_import_seconds() -> float:
    """Part 4: a fresh interpreter importing what a trial's process imports (best of 3)."""
    return min(timed_process([sys.executable, "-c", TRIAL_IMPORTS], Path("/dev/null")) for _ in range(3))


def main() -> None:
    parser = benchmark_parser(__doc__, "one round, and trials of one truncation and one epoch in part 2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--recipe", choices=sorted(RECIPE_FLAGS), default="digits_quick")
    parser.add_argument("--results-dir", type=Path, default=Path("/tmp/bench-sweep"))
    parser.add_argument("--one-process", action="store_true", help="run part 1's reference sweep in this process")
    args = parser.parse_args()
    if args.one_process:
        one_process_sweep(args.recipe, args.results_dir)
        return

    print(f"1. the whole sweep ({args.recipe}), fresh processes, empty cache:", flush=True)
    whole = whole_sweeps(args.recipe, args.results_dir, 1 if args.quick else args.rounds)
    started = time.perf_counter()
    ray.init(num_cpus=2, log_to_driver=False)
    ray_start = time.perf_counter() - started
    trials = trials_alone(args.results_dir, args.quick)
    in_trial = first_step_latency(args.results_dir / "probe", in_trial=True)
    torchtrainer = first_step_latency(args.results_dir / "probe", in_trial=False)
    started = time.perf_counter()
    ray.shutdown()
    ray_stop = time.perf_counter() - started
    imports = fresh_import_seconds()

    plain, tuned = min(whole["one-process"]), min(whole["tune-sweep"])
    print(f"  best of {len(whole['one-process'])}: one process {plain:.1f} s, tune/sweep.py {tuned:.1f} s: "
          f"ratio {tuned / plain:.2f} (target ≤ 1.10), Ray's cost {tuned - plain:.1f} s")  # fmt: skip
    print("2. the trials alone, warm caches, report included:")
    for name, seconds in trials.items():
        print(f"  {name:28s}: {seconds:7.1f} s")
    print(f"  one trial at a time: ratio {trials['tune, 1 trial at a time'] / trials['plain, 1 thread']:.2f}, "
          f"whole machine: ratio {trials['tune, trials at once'] / trials['plain, 2 threads']:.2f}")  # fmt: skip
    print(f"3. Tuner.fit() → first training step: job in the trial {in_trial:.1f} s, "
          f"through a TorchTrainer {torchtrainer:.1f} s")  # fmt: skip
    print(f"4. fixed costs: ray.init {ray_start:.1f} s, ray.shutdown {ray_stop:.1f} s, a fresh process importing "
          f"a trial's modules {imports:.1f} s; together {ray_start + ray_stop + imports:.1f} s, "
          f"{(ray_start + ray_stop + imports) / plain:.0%} of the one-process sweep")  # fmt: skip


if __name__ == "__main__":
    main()
