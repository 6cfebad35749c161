"""What Ray Tune + Ray Train cost a sweep: the `--quick` replacement sweep's trials run through Ray Tune
(one 1-worker TorchTrainer job per trial, trials one at a time) against the same trials run one after
another in one process without Ray, measured in the same run on the same cached artifacts. Target:
Tune's wall time ≤ 1.10 × the plain loop's. Also: the time from a trial's start to its first training
step (a Tune trial whose function starts a TorchTrainer job; the job's worker notes when it begins).

    python benchmarks/bench_sweep_overhead.py [--quick] [--results-dir /tmp/bench-sweep]

--quick: one truncation and 1-epoch classifiers (minutes instead of ~10).
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

from distgan.experiments.artifacts import prepare_sweep  # noqa: E402
from distgan.experiments.classification import TrainingSet, run_classification_trial  # noqa: E402
from distgan.experiments.sweep import run_sweep  # noqa: E402
from distgan.experiments.trial import sweep_launch  # noqa: E402
from distgan.recipes import digits_quick  # noqa: E402
from distgan.train.launch import Launch, run_data_parallel  # noqa: E402


def _note_start(config: dict) -> None:
    Path(config["path"]).write_text(repr(time.time()))


def first_step_latency(tmp: Path) -> float:
    """Seconds from a Tune trial's start to its TorchTrainer worker's first instruction (one worker)."""

    def trial(_: dict) -> None:
        started = time.time()
        launch = Launch(workers=1, cpus_per_worker=1, gpus_per_worker=0, storage_dir=tmp / "train", in_tune_trial=False)
        run_data_parallel(_note_start, {"path": str(tmp / "first_step")}, launch=launch, name="probe")
        tune.report({"latency": float((tmp / "first_step").read_text()) - started})

    grid = tune.Tuner(trial, run_config=tune.RunConfig(name="probe", storage_path=str(tmp / "tune"))).fit()
    return grid[0].metrics["latency"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results-dir", type=Path, default=Path("/tmp/bench-sweep"))
    args = parser.parse_args()
    cfg = replace(digits_quick(), results_dir=args.results_dir, workers_per_trial=1, cpus_per_worker=1.0)
    if args.quick:
        cfg = replace(cfg, truncations=(1.0,), classifier=replace(cfg.classifier, epochs=1, warmup_epochs=0.0))

    # Shared artifacts first (GAN, extractor, statistics; Ray Train jobs), outside both timings.
    ray.init(num_cpus=2, log_to_driver=False)
    artifacts = prepare_sweep(cfg, sweep_launch(cfg, in_tune_trial=False))
    points = [None, *cfg.truncations]
    for truncation in points[1:]:  # sample the synthetic sets once too: both paths then find them cached
        run_classification_trial(
            replace(cfg, classifier=replace(cfg.classifier, epochs=1, warmup_epochs=0.0)),
            artifacts,
            TrainingSet(experiment="replacement", truncation=truncation),
            generator=artifacts.generator,
            trial_dir=args.results_dir / "warmup" / f"{truncation}",
            launch=replace(sweep_launch(cfg, in_tune_trial=False), in_process=True),
        )

    # The same trials in one process, one after another.
    started = time.perf_counter()
    in_process = replace(sweep_launch(cfg, in_tune_trial=False), in_process=True)
    for truncation in points:
        run_classification_trial(
            cfg,
            artifacts,
            TrainingSet(experiment="replacement", truncation=truncation),
            generator=artifacts.generator,
            trial_dir=args.results_dir / "plain" / f"{truncation}",
            launch=in_process,
        )
    plain = time.perf_counter() - started

    # Through Ray Tune: a trial per point, each trial's classifier a 1-worker TorchTrainer job.
    started = time.perf_counter()
    run_sweep(replace(cfg, name="tuned"), SPACES["replacement"](cfg))
    tuned = time.perf_counter() - started
    latency = first_step_latency(args.results_dir / "probe")
    ray.shutdown()

    print(f"{len(points)} trials ({cfg.classifier.epochs} classifier epochs each, 1 worker, 1 thread)")
    print(f"  plain loop, one process : {plain:7.1f} s")
    print(f"  Ray Tune + Ray Train    : {tuned:7.1f} s  (ratio {tuned / plain:.2f}; target ≤ 1.10)")
    print(f"  overhead per trial      : {(tuned - plain) / len(points):7.1f} s")
    print(f"  trial start → first training step (TorchTrainer start-up): {latency:.1f} s")


if __name__ == "__main__":
    main()
