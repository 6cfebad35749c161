"""Where a sweep's jobs run and what its trials reserve (no Ray cluster): one-worker jobs in the process that
wants them, the others as Ray Train jobs; how many trials fit at once without deadlocking on resources."""

import pytest
import torch

from distgan.config import SweepConfig
from distgan.errors import DistganError
from distgan.jobs.placement import fitting_concurrency, sampling_jobs, sweep_jobs, trial_jobs, trial_resources
from distgan.train.launch import Launch, run_data_parallel

ONE_WORKER = {"workers_per_trial": 1, "cpus_per_worker": 1.0}


@pytest.mark.parametrize(
    ("fields", "in_driver", "in_trial"),
    [
        (ONE_WORKER, True, True),  # a local CPU sweep: no Ray Train anywhere
        (ONE_WORKER | {"address": "10.0.0.1:6379"}, False, True),  # a cluster's driver places them with Ray Train
        (ONE_WORKER | {"gpus_per_worker": 1.0}, False, True),  # the driver keeps no CUDA context for the sweep
        ({"workers_per_trial": 2}, False, False),  # two workers all-reduce: a TorchTrainer each
    ],
)
def test_one_worker_jobs_run_in_the_process_that_wants_them(tmp_path, fields, in_driver, in_trial):
    cfg = SweepConfig(results_dir=tmp_path, **fields)
    driver, trial = sweep_jobs(cfg), trial_jobs(cfg, to_tune=True)
    assert (driver.in_process, trial.in_process) == (in_driver, in_trial)
    assert not driver.in_tune_trial and trial.in_tune_trial and not trial_jobs(cfg).in_tune_trial
    assert driver.storage_dir == tmp_path.resolve() / cfg.name / "ray" / "train"


@pytest.mark.parametrize(
    ("fields", "kind", "on_workers"),
    [
        ({"workers_per_trial": 2, "gpus_per_worker": 1.0}, "python", True),  # GPUs: each rank samples its shards
        ({"workers_per_trial": 2, "gpus_per_worker": 1.0}, "samples", False),  # images read from folders
        ({"workers_per_trial": 2}, "distgan", False),  # CPUs gain nothing from a Ray Train group
        # One worker: the trial's process holds its GPU; a job asking Ray for another would wait for ever.
        ({"workers_per_trial": 1, "gpus_per_worker": 1.0}, "distgan", False),
    ],
)
def test_a_synthetic_set_is_sampled_on_the_trials_gpu_workers_or_in_its_process(tmp_path, fields, kind, on_workers):
    launch = sampling_jobs(SweepConfig(results_dir=tmp_path, **fields), kind)
    assert launch.in_process is not on_workers and (launch.workers > 1) is on_workers and not launch.in_tune_trial


def test_a_trial_that_runs_its_worker_reserves_the_workers_resources_else_one_cpu_for_its_driver():
    assert trial_resources(SweepConfig(workers_per_trial=1, cpus_per_worker=2, gpus_per_worker=1)) == {
        "cpu": 2,
        "gpu": 1,
    }
    assert trial_resources(SweepConfig(workers_per_trial=4, cpus_per_worker=2, gpus_per_worker=1)) == {
        "cpu": 1.0,
        "gpu": 0,
    }


def test_concurrency_counts_every_trials_driver_and_workers():
    # 2 workers × 0.5 CPU + a driver's CPU = 2 CPUs a trial: 8 CPUs hold 4 trials, not the 8 drivers alone.
    assert fitting_concurrency(SweepConfig(workers_per_trial=2, cpus_per_worker=0.5), {"CPU": 8.0}) == 4
    assert fitting_concurrency(SweepConfig(workers_per_trial=1, cpus_per_worker=1), {"CPU": 8.0}) == 8
    gpus = SweepConfig(workers_per_trial=2, cpus_per_worker=1, gpus_per_worker=1)
    assert fitting_concurrency(gpus, {"CPU": 64.0, "GPU": 8.0}) == 4  # GPUs bound it, not CPUs


def test_a_trial_larger_than_the_cluster_is_one_clear_error():
    with pytest.raises(DistganError, match=r"a trial needs 5 CPUs \(4 workers × 1 \+ its driver\)"):
        fitting_concurrency(SweepConfig(workers_per_trial=4, cpus_per_worker=1), {"CPU": 2.0})


def test_an_in_process_job_runs_on_its_workers_threads_and_leaves_the_callers_alone(tmp_path):
    seen = []
    launch = Launch(workers=1, cpus_per_worker=1.0, gpus_per_worker=0, storage_dir=tmp_path, in_tune_trial=False,
                    in_process=True)  # fmt: skip
    callers = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        run_data_parallel(lambda config: seen.append(torch.get_num_threads()), {}, launch=launch, name="threads")
        assert seen == [1] and torch.get_num_threads() == 3  # e.g. a driver that goes on to extract features
    finally:
        torch.set_num_threads(callers)
