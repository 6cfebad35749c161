"""What Ray Tune costs a sweep: the replacement sweep's trials run through Ray Tune (`run_sweep`, as
`tune/sweep.py` runs them: one Tune trial per point, each trial's one-worker jobs in the trial's own process)
against the same trials run one after another in one process without Ray, each ending with the report,
measured in the same run on the same cached artifacts.

Two comparisons:
- overhead (the claim, target ≤ 1.10): one trial at a time, one thread, both ways;
- the whole machine (2 CPUs): Tune running as many 1-CPU trials at once as fit, against the plain loop
  with 2 threads.
Also the time from a trial's start to its job's first instruction: for a one-worker job (run in the trial)
and for a Ray Train TorchTrainer job (what trials of several workers start).

    python benchmarks/bench_sweep_overhead.py [--quick] [--results-dir /tmp/bench-sweep]

--quick: one truncation and 1-epoch classifiers (about 3 minutes); default: 3 trials of 4 epochs.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tune")]

import ray  # noqa: E402
from ray import tune  # noqa: E402
from spaces import SPACES  # noqa: E402

from distgan.analysis.report import build_report  # noqa: E402
from distgan.config import SweepConfig  # noqa: E402
from distgan.experiments.artifacts import prepare_sweep  # noqa: E402
from distgan.experiments.classification import TrainingSet, run_classification_trial  # noqa: E402
from distgan.experiments.sweep import run_sweep  # noqa: E402
from distgan.experiments.trial import sweep_launch, trial_dir, trial_name  # noqa: E402
from distgan.recipes import digits_quick  # noqa: E402
from distgan.train.launch import Launch, run_data_parallel  # noqa: E402


def _note_start(config: dict) -> None:
    Path(config["path"]).write_text(repr(time.time()))


def first_step_latency(tmp: Path, in_trial: bool) -> float:
    """Seconds from a Tune trial's start to its one-worker job's first instruction, the job run in the trial
    (`in_trial`) or started as a Ray Train TorchTrainer."""

    def trial(_: dict) -> None:
        started = time.time()
        launch = Launch(workers=1, cpus_per_worker=1, gpus_per_worker=0, storage_dir=tmp / "train",
                        in_tune_trial=False, in_process=in_trial)  # fmt: skip
        run_data_parallel(_note_start, {"path": str(tmp / "first_step")}, launch=launch, name="probe")
        tune.report({"latency": float((tmp / "first_step").read_text()) - started})

    name = f"probe-{'in-trial' if in_trial else 'torchtrainer'}"
    grid = tune.Tuner(trial, run_config=tune.RunConfig(name=name, storage_path=str(tmp / "tune"))).fit()
    return grid[0].metrics["latency"]


def plain_sweep(cfg: SweepConfig, artifacts, truncations: list) -> float:
    """The trials one after another in this process (same trial directories and report as a sweep); seconds."""
    started = time.perf_counter()
    launch = replace(sweep_launch(cfg, in_tune_trial=False), in_process=True)
    for truncation in truncations:
        directory = trial_dir(cfg, trial_name("replacement", {"point": {"truncation": truncation}}, ""))
        training = TrainingSet(experiment="replacement", truncation=truncation)
        run_classification_trial(cfg, artifacts, training, generator=artifacts.generator, trial_dir=directory,
                                 launch=launch)  # fmt: skip
    build_report(cfg.out_dir)
    return time.perf_counter() - started


def tuned_sweep(cfg: SweepConfig) -> float:
    started = time.perf_counter()
    run_sweep(cfg, SPACES["replacement"](cfg))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results-dir", type=Path, default=Path("/tmp/bench-sweep"))
    args = parser.parse_args()
    cfg = replace(digits_quick(), results_dir=args.results_dir, workers_per_trial=1, cpus_per_worker=1.0)
    if args.quick:
        cfg = replace(cfg, truncations=(1.0,), classifier=replace(cfg.classifier, epochs=1, warmup_epochs=0.0))

    # Shared artifacts first (GAN, extractor, statistics; Ray Train jobs), outside every timing.
    ray.init(num_cpus=2, log_to_driver=False)
    artifacts = prepare_sweep(cfg, sweep_launch(cfg, in_tune_trial=False))
    truncations = [None, *cfg.truncations]
    warmup = replace(cfg, name="warmup", classifier=replace(cfg.classifier, epochs=1, warmup_epochs=0.0))
    plain_sweep(warmup, artifacts, truncations)  # samples the synthetic sets: every run below finds them cached

    one_cpu = replace(cfg, max_concurrent_trials=1)
    rows = {
        "plain, 1 thread": plain_sweep(replace(one_cpu, name="plain-1"), artifacts, truncations),
        "tune, 1 trial at a time": tuned_sweep(replace(one_cpu, name="tuned-1")),
    }
    rows["plain, 2 threads"] = plain_sweep(replace(cfg, name="plain-2", cpus_per_worker=2.0), artifacts, truncations)
    rows["tune, trials at once"] = tuned_sweep(replace(cfg, name="tuned-2"))
    in_trial = first_step_latency(args.results_dir / "probe", in_trial=True)
    torchtrainer = first_step_latency(args.results_dir / "probe", in_trial=False)
    ray.shutdown()

    print(f"{len(truncations)} trials, {cfg.classifier.epochs} classifier epochs each, 1 worker, report included")
    for name, seconds in rows.items():
        print(f"  {name:28s}: {seconds:7.1f} s")
    overhead = rows["tune, 1 trial at a time"] / rows["plain, 1 thread"]
    per_trial = (rows["tune, 1 trial at a time"] - rows["plain, 1 thread"]) / len(truncations)
    print(f"  overhead, 1 trial at a time: ratio {overhead:.2f} (target ≤ 1.10), {per_trial:.1f} s per trial")
    print(f"  whole machine: ratio {rows['tune, trials at once'] / rows['plain, 2 threads']:.2f} "
          "(Tune, 2 trials × 1 CPU at once, against the plain loop on 2 threads)")  # fmt: skip
    print(f"  trial start → first instruction of its job: in the trial {in_trial:.2f} s, "
          f"Ray Train TorchTrainer {torchtrainer:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
