"""The compare space (`--space compare --generators FILE.yaml`): several generators ranked in one sweep by the accuracy
of classifiers trained on their images, with seeds, intervals and memorisation. One shared sweep of four python
generators written here (exact copies of the training images, class-true images that are not training images, noise,
and one that raises midway) serves most tests; a second compares two of distgan's own GANs, trained once each; the
leaderboard's arithmetic is checked against an independent computation; a bad file is refused before Ray starts."""

import csv
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import ray
from helpers import read_json, read_report_csv, run_sweep_in_process
from scipy import stats

import distgan.sweep
from distgan.analysis.correlations import STATISTICS, bootstrap_interval
from distgan.analysis.leaderboard import kendall_taus, overlap, ranked, t_interval
from distgan.errors import ConfigError
from distgan.experiments import sweep as sweep_module
from distgan.experiments.sweep import TrialsFailed

GENERATORS = '''
import torch

from distgan.data.sources import load_split

REAL = load_split("digits", "train", image_size=16)
IMAGES, LABELS = torch.from_numpy(REAL.images_NHWC), torch.from_numpy(REAL.labels_N)


class Generator:
    image_size, channels, knob = 16, 1, None

    def __init__(self, make_images):
        self.make_images, self.calls = make_images, 0

    def sample(self, labels, knob_value, generator):
        self.calls += 1
        return self.make_images(labels, generator, self.calls)


OF_CLASS = [torch.nonzero(LABELS == k).flatten() for k in range(10)]


def _of_class(labels, generator):
    """A random training image of each label's class (indices into IMAGES)."""
    draws = torch.rand(len(labels), generator=generator).tolist()
    return torch.tensor([OF_CLASS[k][int(u * len(OF_CLASS[k]))] for k, u in zip(labels.tolist(), draws)])


def copies(labels, generator, calls):
    return IMAGES[_of_class(labels, generator)]


def blends(labels, generator, calls):
    """The mean of two training images of the class: a digit of that class, and no training image."""
    pair = IMAGES[_of_class(labels, generator)].float() + IMAGES[_of_class(labels, generator)].float()
    return (pair / 2).round().to(torch.uint8)


def noise(labels, generator, calls):
    return torch.randint(0, 256, (len(labels), 16, 16, 1), dtype=torch.uint8, generator=generator)


def raises_midway(labels, generator, calls):
    if calls > 1:  # the pre-flight probe is the first call: sampling fails at its second batch
        raise RuntimeError("out of memory at batch 2")
    return noise(labels, generator, calls)


def copier(num_classes, device):
    return Generator(copies)


def novel(num_classes, device):
    return Generator(blends)


def noisy(num_classes, device):
    return Generator(noise)


def flaky(num_classes, device):
    return Generator(raises_midway)
'''
SMALL = ("--quick", "--workers-per-trial", "1", "--cpus-per-worker", "1", "--classifier.arch", "small_cnn",
         "--metrics.extractor-epochs", "4")  # fmt: skip


def write_generators_file(directory: Path, sections: dict) -> Path:
    path = directory / f"generators-{len(list(directory.glob('generators-*.yaml')))}.yaml"
    path.write_text("".join(f"{name}: {json.dumps(section)}\n" for name, section in sections.items()))
    return path


@pytest.fixture(scope="module")
def compare_root(tmp_path_factory) -> Path:
    """Where the module's compare sweeps run and share their caches (real shards, extractor, real sides)."""
    root = tmp_path_factory.mktemp("compare")
    (root / "gens.py").write_text(GENERATORS)
    return root


@pytest.fixture(scope="module")
def three_generators(compare_root, ray_session):
    """The sweep of the copier, the novel generator, noise and the flaky one, two classifier seeds per set:
    (its directory, the TrialsFailed message)."""
    gens = compare_root / "gens.py"
    path = write_generators_file(compare_root, {name: {"kind": "python", "target": f"{gens}:{name}"}
                                                for name in ("copier", "novel", "noisy", "flaky")})  # fmt: skip
    with pytest.raises(TrialsFailed) as failed:
        run_sweep_in_process(compare_root, "--space", "compare", "--generators", str(path), "--seeds", "2",
                             "--name", "three", "--classifier.epochs", "6", *SMALL)  # fmt: skip
    return compare_root / "results" / "three", str(failed.value)


def leaderboard_rows(sweep_dir: Path) -> dict[str, dict]:
    with open(sweep_dir / "leaderboard.csv") as f:
        return {row["generator"]: row for row in csv.DictReader(f)}


def test_the_copier_is_memorising_and_ranks_below_the_novel_generator_and_noise_ranks_last(three_generators):
    sweep_dir, _ = three_generators
    rows = leaderboard_rows(sweep_dir)
    copier, novel, noisy = rows["copier"], rows["novel"], rows["noisy"]
    assert float(copier["copy_rate[domain]"]) == 1.0  # every image is a training image
    assert float(novel["copy_rate[domain]"]) < 0.1 and float(noisy["copy_rate[domain]"]) < 0.1
    assert copier["memorising"] == "True" and novel["memorising"] == noisy["memorising"] == "False"
    assert float(copier["top1_error_mean"]) <= float(novel["top1_error_mean"])  # as good, or better: and yet
    assert [int(novel["rank"]), int(noisy["rank"]), int(copier["rank"])] == [1, 2, 3]
    assert float(noisy["top1_error_mean"]) > 0.5  # noise teaches nothing
    report = (sweep_dir / "report.md").read_text()
    assert "**Memorising**: `copier`: ranked after all others" in report  # said above the table too


def test_every_column_of_the_ranked_generators_is_filled_with_intervals_over_two_seeds(three_generators):
    sweep_dir, _ = three_generators
    rows = leaderboard_rows(sweep_dir)
    for name in ("copier", "novel", "noisy"):
        row = rows[name]
        empty = [
            key
            for key, value in row.items()
            if value == "" and key not in ("knob", "best_knob_value", "top1_overlaps", "failed_trials")
        ]
        assert not empty, (name, empty)
        assert row["seeds"] == "2" and row["kind"] == "python" and len(row["weights_sha256"]) == 64
        low, mean, high = (float(row[f"top1_error_{part}"]) for part in ("low", "mean", "high"))
        assert low <= mean <= high
        for key in ("fid[domain]", "kid_mean[domain]", "authpct[domain]", "ct[domain]", "gap_to_real"):
            assert math.isfinite(float(row[key])), (name, key)
    assert float(rows["copier"]["ct[domain]"]) < float(rows["novel"]["ct[domain]"])  # C_T ≪ 0: copying
    table = distgan.sweep.first_table((sweep_dir / "report.md").read_text())
    assert "| Rank | Generator | Kind | sha256 | Best knob | Seeds | Top-1 error (%) [95 % CI]" in table
    assert "Copy rate (domain) | AuthPct (domain) | C_T (domain) | Memorising |" in table
    assert len({line.count(" | ") for line in table.splitlines()}) == 1  # the failed row has every cell too


def test_two_classifiers_per_set_and_two_real_rows_each_with_its_seed(three_generators):
    sweep_dir, _ = three_generators
    results = {path.parent.name: read_json(path) for path in sweep_dir.glob("trials/*/result.json")}
    assert sorted(results) == ["copier-generated", "copier-generated-seed1", "noisy-generated",
                               "noisy-generated-seed1", "novel-generated", "novel-generated-seed1", "real",
                               "real-seed1"]  # fmt: skip
    seeds = {name: result["config"]["classifier"]["seed"] for name, result in results.items()}
    assert seeds["novel-generated"] == 0 and seeds["novel-generated-seed1"] == 1 and seeds["real-seed1"] == 1
    novel = results["novel-generated"]
    assert novel["experiment"] == "compare" and novel["generator_name"] == "novel"
    assert set(novel["quality"]["domain"]) >= {"copy_rate", "authpct", "ct", "fid"}
    csv_rows = read_report_csv(sweep_dir)
    assert {row["trial"]: row["generator"] for row in csv_rows}["real-seed1"] == "real"
    assert {row["generator"] for row in csv_rows} == {"real", "copier", "novel", "noisy"}


def test_the_failing_generator_is_marked_failed_with_its_one_line_and_the_others_finish(three_generators):
    sweep_dir, message = three_generators
    assert "2 trial(s) failed" in message and "out of memory at batch 2" in message
    row = leaderboard_rows(sweep_dir)["flaky"]
    assert row["rank"] == "" and "flaky-generated: GeneratorError: " in row["failed_trials"]
    assert "out of memory at batch 2" in row["failed_trials"] and "\n" not in row["failed_trials"]
    failure = read_json(sweep_dir / "trials" / "flaky-generated-seed1" / "failure.json")
    assert failure["point"]["generator"] == "flaky" and failure["seed"] == 1
    report = (sweep_dir / "report.md").read_text()
    assert "**Failed**: `flaky`: flaky-generated" in report


def test_the_figures_and_a_sample_grid_per_generator_at_its_best_knob(three_generators):
    sweep_dir, _ = three_generators
    for name in ("compare_top1_vs_knob.png", "compare_metrics_vs_top1.png"):
        assert (sweep_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (sweep_dir / "report.md").read_text()
    for name in ("copier", "novel", "noisy"):
        assert f"![{name}](trials/{name}-generated/samples.png)" in report
    assert "## Which sample metric orders the generators as accuracy does" in report


def test_each_set_is_scored_once_for_all_its_seeds(three_generators):
    """The two classifiers of a set train on the same images: one scoring job's numbers serve both trials."""
    sweep_dir, _ = three_generators
    for name in ("copier", "novel", "noisy"):
        first, second = (read_json(sweep_dir / "trials" / f"{name}-generated{seed}" / "result.json")
                         for seed in ("", "-seed1"))  # fmt: skip
        assert first["stages"]["score"] == second["stages"]["score"]  # the same ranks, pids and wall time
        assert first["quality"] == second["quality"] and first["config"]["classifier"]["seed"] != second["config"][
            "classifier"]["seed"]  # fmt: skip


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"mine": {"kind": "pickle", "target": "gens.py:copier"}},
            r"mine: --generator.kind must be one of \[.*\] \(got 'pickle'\)",
        ),
        (
            {"mine": {"kind": "python", "target": "gens.py:copier", "truncate": 1}},
            r"mine: unknown field\(s\) \['truncate'\]; known: \[",
        ),
        (
            {"mine": {"kind": "python", "target": "gens.py:copier", "gan": {"arch": "dcgan"}}},
            r"mine: gan: only kind distgan without weights trains a GAN",
        ),
        ({"gan": {"kind": "distgan", "gan": {"archh": "dcgan"}}}, r"gan: unknown config key 'gan.archh'"),
        ({"real": {"kind": "python", "target": "gens.py:copier"}}, r"generator name 'real' must be"),
    ],
    ids=["unknown-kind", "unknown-field", "gan-of-a-python-generator", "unknown-gan-field", "reserved-name"],
)
def test_a_bad_generators_file_is_refused_before_ray_starts(compare_root, tmp_path, monkeypatch, capsys, sections,
                                                            message):  # fmt: skip
    reached, was_running = [], ray.is_initialized()
    monkeypatch.setattr(sweep_module, "start_ray", lambda cfg: reached.append(cfg))
    path = write_generators_file(tmp_path, sections)
    code = distgan.sweep.main(["--quick", "--space", "compare", "--generators", str(path), "--results-dir",
                               str(tmp_path / "results")])  # fmt: skip
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and not reached and ray.is_initialized() == was_running, err[-2000:]
    assert str(path) in line
    assert re.search(message, line), line
    assert not (tmp_path / "results").exists()  # refused before the real shards too


def test_a_generator_name_given_twice_is_refused(compare_root, tmp_path):
    """YAML keeps the last of two equal keys: the first generator would vanish from the comparison unseen."""
    path = tmp_path / "twice.yaml"
    gens = compare_root / "gens.py"
    path.write_text("".join(f"mine: {{kind: python, target: '{gens}:{name}'}}\n" for name in ("copier", "novel")))
    with pytest.raises(ConfigError, match=r"twice.yaml: generator name\(s\) \['mine'\] given more than once"):
        distgan.sweep.parse_config(["--quick", "--space", "compare", "--generators", str(path)])


def test_seeds_and_generators_belong_to_the_compare_space(tmp_path):
    with pytest.raises(ConfigError, match=r"--seeds: several classifiers per set in --space compare only \(got 3\)"):
        distgan.sweep.parse_config(["--quick", "--seeds", "3"])
    with pytest.raises(ConfigError, match=r"--space compare needs --generators FILE.yaml"):
        distgan.sweep.parse_config(["--quick", "--space", "compare"])
    with pytest.raises(ConfigError, match=r"--metrics.copy-rate-threshold must be in \(--metrics.copy-quantile, 1\]"):
        distgan.sweep.parse_config(["--quick", "--metrics.copy-rate-threshold", "0.005"])  # held-out data scores 0.01


def test_distgans_own_gans_are_trained_once_each_and_ranked(compare_root, ray_session):
    gans = {"dcgan": {"kind": "distgan", "gan": {"arch": "dcgan"}, "knob_values": [1.0]},
            "acgan": {"kind": "distgan", "gan": {"arch": "acgan"}, "knob_values": [1.0]}}  # fmt: skip
    flags = ("--gan.iterations", "40", "--include-real", "false", "--classifier.epochs", "1", *SMALL)
    done = run_sweep_in_process(compare_root, "--space", "compare", "--generators",
                                str(write_generators_file(compare_root, gans)), "--name", "gans", *flags)  # fmt: skip
    cache = compare_root / "results" / "cache"
    trained = {path: path.stat().st_mtime_ns for path in cache.glob("gan-*/generator.pt")}
    assert len(trained) == 2  # one GAN per architecture
    rows = leaderboard_rows(done.out_dir)
    assert sorted(int(rows[name]["rank"]) for name in gans) == [1, 2] and rows["dcgan"]["kind"] == "distgan"
    assert {read_json(cache / path.parent.name / "meta.json")["gan"]["arch"] for path in trained} == {"dcgan", "acgan"}
    # A second comparison of one of them samples the GAN the first trained: no third GAN, none retrained.
    again = write_generators_file(compare_root, {"dcgan": gans["dcgan"]})
    run_sweep_in_process(compare_root, "--space", "compare", "--generators", str(again), "--name", "gans-again",
                         *flags)  # fmt: skip
    assert {path: path.stat().st_mtime_ns for path in cache.glob("gan-*/generator.pt")} == trained


def test_t_interval_is_the_textbook_formula():
    values = [0.10, 0.14, 0.12]
    mean, s = np.mean(values), np.std(values, ddof=1)
    half = 4.302652729911275 * s / math.sqrt(3)  # t(0.975, 2 degrees of freedom), from a table
    assert t_interval(values) == pytest.approx({"mean": mean, "low": mean - half, "high": mean + half, "n": 3})
    one = t_interval([0.2])
    assert one["mean"] == 0.2 and math.isnan(one["low"]) and math.isnan(one["high"])
    # Two seeds (t = 12.71): an error rate's interval is cut to [0, 1], where the raw one leaves it.
    wide = t_interval([0.02, 0.06], bounds=(0.0, 1.0))
    assert wide["low"] == 0.0 and wide["high"] == pytest.approx(0.04 + 12.706204736174705 * 0.02)  # s/√n = 0.02


def test_overlap_of_intervals():
    assert overlap({"low": 0.1, "high": 0.2}, {"low": 0.2, "high": 0.3})
    assert not overlap({"low": 0.1, "high": 0.2}, {"low": 0.21, "high": 0.3})
    assert overlap({"low": math.nan, "high": math.nan}, {"low": 0.0, "high": 1.0}) is None


def test_ranking_puts_memorising_generators_last_whatever_their_error():
    def entry(name, error, memorising, half=0.01):
        return {"generator": name, "memorising": memorising,
                "top1": {"mean": error, "low": error - half, "high": error + half}}  # fmt: skip

    rows = ranked([entry("copier", 0.05, True), entry("gan", 0.20, False), entry("dit", 0.12, False),
                   entry("vae", 0.125, False), entry("copier2", 0.30, True)])  # fmt: skip
    assert [(r["rank"], r["generator"]) for r in rows] == [(1, "dit"), (2, "vae"), (3, "gan"), (4, "copier"),
                                                           (5, "copier2")]  # fmt: skip
    assert rows[0]["overlaps"] == ["vae"] and rows[2]["overlaps"] == []


def test_kendall_tau_counts_concordant_and_discordant_pairs_with_a_reproducible_bootstrap():
    fid = [10.0, 14.0, 12.0, 30.0, 25.0]
    error = [0.10, 0.12, 0.15, 0.60, 0.40]
    rows = [{"rank": k + 1, "fid[domain]": f, "top1": {"mean": e}}
            for k, (f, e) in enumerate(zip(fid, error, strict=True))]  # fmt: skip
    (entry,) = kendall_taus(rows, [("fid[domain]", "FID (domain)")])
    signs = [np.sign(fid[i] - fid[j]) * np.sign(error[i] - error[j]) for i, j in itertools.combinations(range(5), 2)]
    assert entry["tau"] == pytest.approx(sum(signs) / len(signs))  # no ties: τ-b = (C − D) / (n choose 2) = 0.6
    assert entry["p_value"] == pytest.approx(stats.kendalltau(fid, error).pvalue)
    assert entry["ci_low"] <= entry["tau"] <= entry["ci_high"] <= 1
    again = bootstrap_interval(np.array(fid), np.array(error), "kendall")
    assert (again["ci_low"], again["ci_high"]) == (entry["ci_low"], entry["ci_high"])
    (short,) = kendall_taus(rows[:2], [("fid[domain]", "FID (domain)")])
    assert math.isnan(short["tau"]) and "τ needs at least 3" in short["reason"]


def test_the_bootstraps_kendall_tau_is_scipys_on_every_resample_ties_included():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, (200, 6)).astype(float), rng.integers(0, 4, (200, 6)).astype(float)  # many ties
    expected = [stats.kendalltau(a, b).statistic for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(STATISTICS["kendall"](x, y), expected, rtol=1e-12)  # NaN where a row is constant
    np.testing.assert_allclose(STATISTICS["kendall"](x.T, y.T, axis=0), expected, rtol=1e-12)
