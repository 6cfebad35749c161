"""The report from result files alone: tables equal their inputs, correlations equal SciPy's on the same columns,
Figure 2 has a line per τ, sections follow the experiments present, rebuilds are byte-identical, bad files are
one clear DataError. Synthetic but schema-complete result.json files; no Ray, no training."""

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats

from distgan.analysis.correlations import N_RESAMPLES, bootstrap_interval, correlate, correlations
from distgan.analysis.embedding import write_embedding
from distgan.analysis.figures import augmentation_figure
from distgan.analysis.report import build_report
from distgan.analysis.results import load_results, read_result
from distgan.analysis.tables import augmentation_rows, gan_rows
from distgan.config import SweepConfig, to_dict
from distgan.errors import DataError

CLASSES = [str(k) for k in range(10)]
CONFIG = to_dict(SweepConfig(name="mixed"))
GAN = {"arch": "dcgan", "loss": "hinge", "lr_d": 2e-4, "lr_g": 1e-4, "batch_size": 64, "iterations": 2000,
       "d_steps_schedule": "2", "seed": 0}  # fmt: skip

# (experiment, trial, training_set, τ, fraction, top1 error, IS, FID, GAN-test acc.)
REPLACEMENT = [
    ("replacement", "real", "real", None, None, 0.04, 9.1, 1.5, 0.96),
    ("replacement", "tau0.2", "synthetic", 0.2, None, 0.41, 8.8, 30.0, 0.97),
    ("replacement", "tau0.5", "synthetic", 0.5, None, 0.22, 8.1, 18.0, 0.93),
    ("replacement", "tau1", "synthetic", 1.0, None, 0.15, 7.0, 12.0, 0.85),
    ("replacement", "tau2", "synthetic", 2.0, None, 0.19, 5.2, 16.0, 0.71),
]
AUGMENTATION = [("augmentation", "aug-real", "real", None, 0.0, 0.05, 9.1, 1.5, 0.96)] + [
    ("augmentation", f"aug-tau{tau:g}-f{f:g}", "real+synthetic", tau, f, 0.05 - 0.01 * f + 0.02 * tau * f, 0, 0, 0)
    for tau in (0.5, 1.0)
    for f in (0.25, 0.5, 1.0)
]
GAN_TRIALS = [  # (trial, lr_d, schedule, iterations done, FID, GAN-train acc., IS, GAN-test acc.)
    ("gan-a", 1e-4, "5,2@1000", 2000, 14.0, 0.80, 7.5, 0.90),
    ("gan-b", 4e-4, "1", 2000, 25.0, 0.62, 6.1, 0.88),
    ("gan-c", 2e-4, "3", 500, 40.0, None, 4.0, 0.50),  # stopped early by ASHA: no GAN-train classifier
    ("gan-d", 3e-4, "5,4@500,3@1000,2@1500", 2000, 11.0, 0.86, 8.0, 0.93),
]


SAMPLED_BY = {"kind": "distgan", "sha256": "0" * 64, "sha256_of": "weights file", "truncation_convention": "resample"}


def make_result(experiment, trial, training_set, tau, fraction, top1, is_mean, fid, gan_test, **extra) -> dict:
    """A result.json as the trials write it (all keys of the schema)."""
    per_class = [max(0.0, min(1.0, 1 - (top1 or 0) + 0.03 * (k - 4.5))) for k in range(10)]
    if trial == "tau0.2":
        per_class[3] = 0.0  # a class collapsed
    result = {
        "sweep": "mixed",
        "space": experiment,
        "experiment": experiment,
        "trial": trial,
        "training_set": training_set,
        "knob": None if tau is None else "truncation",
        "knob_value": tau,
        "sample": None if tau is None else {"truncation_factor": 2.0, "truncation_convention": None, "seed": 0},
        "sampling": None if tau is None else {"generator": SAMPLED_BY, "knob": "truncation", "knob_value": tau},
        "synthetic_fraction": fraction,
        "top1_error": top1,
        "top5_error": None if top1 is None else top1 / 4,
        "per_class_accuracy": per_class if top1 is not None else None,
        "num_test_samples": 360,
        "num_train_samples": 1437,
        "quality": {  # two feature spaces, as `--metrics.extractors domain,inception` writes them
            "domain": {"inception_score_mean": is_mean, "inception_score_std": 0.1 * is_mean, "fid": fid},
            "inception": {"fid": None if fid is None else 3 * fid + 7, "kid_mean": None if fid is None else fid / 1e3},
        },
        "gan_test_accuracy": gan_test,
        "gan_train_accuracy": 1 - top1 if training_set == "synthetic" and top1 is not None else None,
        "gan": GAN,
        "class_names": CLASSES,
        "feature_spaces": {
            "domain": {"description": "domain classifier (resnet20)"},
            "inception": {"description": "x"},
        },
        "digests": {"generator_sha256": "0" * 64},
        "workers": 2,
        "node": {"hostname": "node0", "ray_node_id": "abc"},
        "versions": {"distgan": "0.1.0"},
        "config": CONFIG,
        "wall_time_sec": 12.5,
    }
    return result | extra


def write_result(sweep_dir, result: dict) -> None:
    path = sweep_dir / "trials" / result["trial"] / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))


def gan_results() -> list[dict]:
    out = []
    for trial, lr_d, schedule, done, fid, gan_train, is_mean, gan_test in GAN_TRIALS:
        top1 = None if gan_train is None else 1 - gan_train
        gan = GAN | {"lr_d": lr_d, "d_steps_schedule": schedule}
        if trial == "gan-d":
            gan |= {"arch": "acgan", "loss": "wgan-gp"}
        extra = {"gan": gan, "gan_iterations_done": done, "stopped_early": done < GAN["iterations"]}
        out.append(make_result("gan", trial, "synthetic", 1.0, None, top1, is_mean, fid, gan_test, **extra))
    out.append(make_result("gan-test", "gt-a", "synthetic", 1.0, None, 0.2, 7.0, 13.0, 0.9, gan_iterations_done=2000))
    out.append(make_result("gan-test", "gt-b", "synthetic", 1.0, None, 0.3, 6.0, 20.0, 0.8, gan_iterations_done=2000))
    return out


def write_all_experiments(directory):
    for row in REPLACEMENT + AUGMENTATION:
        write_result(directory, make_result(*row))
    for result in gan_results():
        write_result(directory, result)
    return directory


@pytest.fixture
def sweep_dir(tmp_path):
    """A results directory with trials of all four experiments, for tests that change it."""
    return write_all_experiments(tmp_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The same directory with its report built once (tests that only read the report share it)."""
    directory = write_all_experiments(tmp_path_factory.mktemp("built"))
    build_report(directory)
    return directory


def read_csv(path) -> dict[str, dict]:
    with open(path) as f:
        return {row["trial"]: row for row in csv.DictReader(f)}


def test_report_csv_has_one_row_per_trial_with_the_inputs(built):
    rows = read_csv(built / "report.csv")
    assert len(rows) == len(REPLACEMENT) + len(AUGMENTATION) + len(GAN_TRIALS) + 2
    for experiment, trial, training_set, tau, fraction, top1, _, fid, gan_test in REPLACEMENT + AUGMENTATION:
        row = rows[trial]
        assert (row["experiment"], row["training_set"]) == (experiment, training_set)
        assert row["knob_value"] == ("" if tau is None else str(tau))
        assert row["synthetic_fraction"] == ("" if fraction is None else str(fraction))
        assert float(row["top1_error"]) == top1 and float(row["fid[domain]"]) == fid
        assert float(row["fid[inception]"]) == 3 * fid + 7 and row["inception_score_mean[inception]"] == ""
        assert float(row["gan_test_accuracy"]) == gan_test
    assert float(rows["tau0.5"]["gan_train_accuracy"]) == 1 - 0.22 and rows["real"]["gan_train_accuracy"] == ""
    stopped = rows["gan-c"]
    assert (stopped["gan_iterations_done"], stopped["gan_iterations"], stopped["stopped_early"]) == (
        "500",
        "2000",
        "True",
    )
    assert stopped["gan_lr_d"] == "0.0002" and stopped["gan_d_steps_schedule"] == "3" and stopped["top1_error"] == ""


def test_table1_lists_replacement_rows_with_their_numbers_in_percent(built):
    text = (built / "report.md").read_text()
    table = text.split("## Table 1")[1].split("##")[0]
    lines = [line for line in table.splitlines() if line.startswith("| real") or line.startswith("| synthetic")]
    assert len(lines) == len(REPLACEMENT)
    for line, (_, _, training_set, tau, _, top1, is_mean, fid, gan_test) in zip(lines, REPLACEMENT, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == training_set and cells[1] == ("–" if tau is None else f"{tau:.2f}")
        assert float(cells[2]) == pytest.approx(100 * top1 / 4) and float(cells[3]) == pytest.approx(100 * top1)
        assert cells[4] == f"{is_mean:.2f} ± {0.1 * is_mean:.2f}" and float(cells[5]) == fid
        assert float(cells[6]) == pytest.approx(3 * fid + 7) and float(cells[7]) == pytest.approx(fid / 1e3, abs=1e-4)
        assert float(cells[8]) == pytest.approx(100 * gan_test)
    # Every number labelled with its feature space; a space without logits has no IS column.
    assert "| IS (domain) | FID (domain) | FID (inception) | KID (inception) | GAN-test acc. (%) |" in table
    assert "Classes at 0 % accuracy: `3` (τ = 0.2)." in text


def test_augmentation_table_gains_over_the_real_row(built):
    rows = augmentation_rows(load_results(built))
    assert [(r["knob_value"], r["synthetic_fraction"]) for r in rows] == [(None, 0.0)] + [
        (tau, f) for tau in (0.5, 1.0) for f in (0.25, 0.5, 1.0)
    ]
    for row, source in zip(rows, AUGMENTATION, strict=True):
        assert row["top1_error"] == source[5]
        assert row["top1_accuracy_gain"] == pytest.approx(0.05 - source[5])
    text = (built / "report.md").read_text()
    gain = 100 * (0.05 - AUGMENTATION[-1][5])  # τ = 1, fraction 1: 0.06 error, −1 point
    assert f"| real+synthetic | 1.00 | 1.00 | 6.00 | 1.50 | {gain:+.2f} |" in text


def test_figure2_has_one_line_per_truncation_and_a_dashed_real_baseline(built):
    rows = augmentation_rows(load_results(built))
    fig = augmentation_figure(rows)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["real data only", "τ = 0.5", "τ = 1"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    baseline = lines["real data only"]
    assert baseline.get_linestyle() == "--" and list(baseline.get_ydata()) == pytest.approx([95.0, 95.0])
    for tau in (0.5, 1.0):
        x, y = lines[f"τ = {tau:g}"].get_data()
        assert list(x) == [0.25, 0.5, 1.0]
        assert list(y) == pytest.approx([100 * (1 - (0.05 - 0.01 * f + 0.02 * tau * f)) for f in x])
    assert (built / "augmentation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gan_table_rows_sorted_by_fid_with_iterations_and_gan_train(built):
    rows = gan_rows(load_results(built))
    assert [r["trial"] for r in rows] == ["gan-d", "gt-a", "gan-a", "gt-b", "gan-b", "gan-c"]
    by_trial = {r["trial"]: r for r in rows}
    assert by_trial["gan-c"]["stopped_early"] and by_trial["gan-c"]["gan_train_accuracy"] is None
    assert (by_trial["gan-c"]["iterations_done"], by_trial["gan-c"]["iterations"]) == (500, 2000)
    assert by_trial["gan-d"]["d_steps_schedule"] == "5,4@500,3@1000,2@1500" and by_trial["gan-d"]["lr_d"] == 3e-4
    text = (built / "report.md").read_text()
    # The NYU study's summary layout: arch, loss, learning rates of D and G, batch, iterations, D:G schedule, IS, FID,
    # GAN-train, GAN-test.
    assert (
        "| Experiment | Trial | Arch | Loss | lr D | lr G | Batch | Iterations | D:G schedule | Seed | IS (domain) "
        "| FID (domain) | FID (inception) | KID (inception) | GAN-train (%) | GAN-test (%) |" in text
    )
    assert (
        "| gan | `gan-c` | dcgan | hinge | 2.00e-04 | 1.00e-04 | 64 | 500 / 2000 (stopped early) | 3 | 0 "
        "| 4.00 ± 0.40 | 40.00 | 127.00 | 0.0400 | – | 50.00 |" in text
    )
    assert "| gan | `gan-d` | acgan | wgan-gp | 3.00e-04 | 1.00e-04 | 64 | 2000 | 5,4@500,3@1000,2@1500 | 0 |" in text
    assert by_trial["gan-d"]["arch"] == "acgan" and rows[-1]["arch"] == "dcgan"


def test_correlations_equal_scipy_on_the_same_columns_with_interval_around_r(built):
    results = load_results(built)
    entries = {(e["experiment"], e["metric"], e["accuracy"]): e for e in correlations(results)}
    synthetic = [row for row in REPLACEMENT if row[2] == "synthetic"]
    fid = np.array([row[7] for row in synthetic])
    top1_accuracy = np.array([1 - row[5] for row in synthetic])
    entry = entries[("replacement", "fid[domain]", "top1_accuracy")]
    assert entry["metric_label"] == "FID (domain)"
    assert entry["num_rows"] == 4 and entry["reason"] is None
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        expected = fn(fid, top1_accuracy)
        assert entry[method]["r"] == pytest.approx(expected.statistic, abs=1e-12)
        assert entry[method]["p_value"] == pytest.approx(expected.pvalue, abs=1e-12)
        assert entry[method]["ci_low"] <= entry[method]["r"] <= entry[method]["ci_high"]
    # GAN-train over the gan trials: the stopped one has none, so 3 rows remain.
    gan_entry = entries[("gan", "inception_score_mean[domain]", "gan_train_accuracy")]
    assert gan_entry["num_rows"] == 3
    is_mean, gan_train = np.array([7.5, 6.1, 8.0]), np.array([0.80, 0.62, 0.86])
    assert gan_entry["pearson"]["r"] == pytest.approx(stats.pearsonr(is_mean, gan_train).statistic, abs=1e-12)
    document = json.loads((built / "correlations.json").read_text())
    assert document["method"]["n_resamples"] == N_RESAMPLES == 2000
    stored = next(
        e
        for e in document["correlations"]
        if (e["experiment"], e["metric"], e["accuracy"]) == ("replacement", "fid[domain]", "top1_accuracy")
    )
    assert stored["pearson"] == pytest.approx(entry["pearson"])


def test_bootstrap_interval_is_scipys_percentile_interval_and_reproducible():
    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = 0.7 * x + rng.normal(scale=0.5, size=12)
    first, again = bootstrap_interval(x, y, "pearson"), bootstrap_interval(x, y, "pearson")
    assert first == again and first["num_degenerate_resamples"] == 0
    reference = stats.bootstrap(
        (x, y),
        lambda a, b, axis=-1: stats.pearsonr(a, b, axis=axis).statistic,
        paired=True,
        vectorized=True,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert (first["ci_low"], first["ci_high"]) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert bootstrap_interval(x, y, "pearson", seed=1) != first  # the seed is what makes it reproducible
    spearman = correlate(x, y)["spearman"]
    assert spearman["ci_low"] <= stats.spearmanr(x, y).statistic <= spearman["ci_high"]


def test_undefined_correlations_are_nan_with_a_reason(built):
    entries = {(e["experiment"], e["metric"], e["accuracy"]): e for e in correlations(load_results(built))}
    two = entries[("gan-test", "fid[domain]", "top1_accuracy")]
    assert two["num_rows"] == 2 and math.isnan(two["pearson"]["r"]) and math.isnan(two["spearman"]["p_value"])
    assert two["reason"] == "2 row(s) with both values; a correlation needs at least 3"
    assert ("augmentation", "fid[domain]", "gan_train_accuracy") not in entries  # no augmentation row has GAN-train
    assert ("augmentation", "fid[domain]", "top1_accuracy") in entries
    constant = correlate(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]), "FID", "Top-1 acc.")
    assert constant["reason"] == "Top-1 acc. is constant over the 3 rows" and math.isnan(constant["pearson"]["ci_low"])
    text = (built / "report.md").read_text()
    assert "| gan-test | FID (domain) | Top-1 acc. | 2 | nan (nan) [nan, nan] | nan (nan) [nan, nan] | 2 row(s)" in text
    document = json.loads((built / "correlations.json").read_text())
    stored = next(e for e in document["correlations"] if e["experiment"] == "gan-test")
    assert stored["pearson"]["r"] is None and stored["reason"].startswith("2 row(s)")


def test_sections_appear_only_for_the_experiments_present(tmp_path):
    for row in AUGMENTATION:
        write_result(tmp_path, make_result(*row))
    text = build_report(tmp_path, extra_sections=["## Notes\n\nRun on a quiet night.", None]).read_text()
    assert "## Augmentation" in text and "## Correlations" in text
    assert "## Table 1" not in text and "## GANs" not in text and "## Per-class" not in text
    assert text.rstrip().endswith("## Notes\n\nRun on a quiet night.")
    assert not (tmp_path / "metrics_vs_error.png").exists() and (tmp_path / "augmentation.png").exists()


def test_all_sections_and_figures_for_a_mixed_directory(sweep_dir):
    (sweep_dir / "trials" / "tau0.5" / "samples.png").write_bytes(b"")  # a sample grid beside its trial
    (sweep_dir / "trials" / "crashed").mkdir()
    text = build_report(sweep_dir).read_text()
    for heading in ("## Table 1", "## Augmentation", "## GANs", "## Correlations", "## Per-class", "## Figures"):
        assert heading in text
    for figure in ("per_class_accuracy.png", "metrics_vs_error.png", "augmentation.png"):
        assert f"![{figure}]({figure})" in text and (sweep_dir / figure).is_file()
    assert "replacement `tau0.5` (τ = 0.5): ![tau0.5](trials/tau0.5/samples.png)" in text
    assert (
        "## Trials without a result\nNo result.json (failed, stopped before writing, or still running): crashed."
        in text
    )


def test_rebuilding_gives_byte_identical_files(sweep_dir):
    names = ("report.md", "report.csv", "correlations.json", "augmentation.png", "per_class_accuracy.png")
    build_report(sweep_dir)
    before = {name: (sweep_dir / name).read_bytes() for name in names}
    build_report(sweep_dir)
    assert {name: (sweep_dir / name).read_bytes() for name in names} == before
    assert not list(sweep_dir.glob(".*tmp*"))  # no temporary files left behind


def test_gan_trials_loss_curves_and_tsne_are_drawn_from_their_files_and_rebuilt_identically(sweep_dir):
    rng = np.random.default_rng(0)
    for trial in ("gan-a", "gt-b"):
        directory = sweep_dir / "trials" / trial
        rows = [f"{i},{1 + rng.random():.4f},{2 - rng.random():.4f}" for i in range(50)]
        (directory / "losses.csv").write_text("iteration,d_loss,g_loss\n" + "\n".join(rows) + "\n")
    labels_N = np.tile(np.arange(10), 6)
    embedding = {"source": np.repeat(["real", "generated"], 30), "label": labels_N, "xy_N2": rng.normal(size=(60, 2))}
    write_embedding(sweep_dir / "trials" / "gan-a" / "tsne.csv", embedding, CLASSES)
    text = build_report(sweep_dir).read_text()
    section = text.split("## GAN training: loss curves and t-SNE")[1].split("\n## ")[0]
    assert (
        "- gan `gan-a` (dcgan, hinge): ![losses gan-a](trials/gan-a/losses.png) "
        "![t-SNE gan-a](trials/gan-a/tsne.png) ([points](trials/gan-a/tsne.csv))" in section
    )
    assert "- gan-test `gt-b` (dcgan, hinge): ![losses gt-b](trials/gt-b/losses.png)\n" in section + "\n"
    assert "gan-b" not in section  # no files, no line
    figures = [sweep_dir / "trials" / "gan-a" / "losses.png", sweep_dir / "trials" / "gan-a" / "tsne.png"]
    before = [figure.read_bytes() for figure in figures]
    assert all(data[:8] == b"\x89PNG\r\n\x1a\n" for data in before)
    build_report(sweep_dir)
    assert [figure.read_bytes() for figure in figures] == before


def test_old_replacement_results_get_the_new_keys(tmp_path):
    old = make_result(*REPLACEMENT[2])
    for key in ("experiment", "synthetic_fraction", "gan_train_accuracy", "gan", "feature_spaces", "sampling", "knob"):
        del old[key]
    old |= old.pop("quality")["domain"]  # before feature spaces: flat numbers, measured with the domain classifier
    old["truncation"] = old.pop("knob_value")  # before generator kinds: a distgan GAN at a truncation τ
    path = tmp_path / "result.json"
    path.write_text(json.dumps(old))
    result = read_result(path)
    assert result["experiment"] == "replacement" and result["synthetic_fraction"] is None
    assert result["gan_train_accuracy"] == pytest.approx(1 - 0.22) and result["gan"] is None
    assert result["fid[domain]"] == 18.0 and result["inception_score_mean[domain]"] == 8.1 and "fid" not in result
    assert result["knob"] == "truncation" and result["knob_value"] == REPLACEMENT[2][3] and "truncation" not in result


def test_the_report_ranks_every_metric_in_every_space_by_how_well_it_predicts_accuracy(built):
    """Replacement: over the 4 generated sets, FID (domain) and FID (inception) order the sets alike (ρ = −1,
    an affine map of each other), IS (domain) only partly: the ranking puts the FIDs first and says whether
    the intervals separate the best from the runner-up."""
    document = json.loads((built / "correlations.json").read_text())
    (replacement,) = [r for r in document["predictor_ranking"] if r["experiment"] == "replacement"]
    ranked = [e["metric"] for e in replacement["ranking"]]
    assert set(ranked[:2]) == {"fid[domain]", "fid[inception]"} and len(ranked) == 5  # + IS, KID, GAN-test
    best = replacement["ranking"][0]
    synthetic = [row for row in REPLACEMENT if row[2] == "synthetic"]
    rho = stats.spearmanr([row[7] for row in synthetic], [1 - row[5] for row in synthetic]).statistic
    assert best["spearman"]["r"] == pytest.approx(rho) and abs(rho) == pytest.approx(1.0)
    assert [abs(e["spearman"]["r"]) for e in replacement["ranking"]] == sorted(
        (abs(e["spearman"]["r"]) for e in replacement["ranking"]), reverse=True
    )
    low, high = best["abs_interval"]
    assert 0 <= low <= abs(best["spearman"]["r"]) <= high <= 1
    assert replacement["separated"] is False  # two metrics with ρ = −1 cannot be told apart
    text = (built / "report.md").read_text()
    section = text.split("## Which metric predicts usefulness")[1].split("\n## ")[0]
    assert "predicts Top-1 accuracy best" in section and "do not separate them" in section
    assert "| 1 | FID (" in section and "**augmentation**" not in section  # its metrics are constant: undefined


def test_per_class_fid_and_kid_sit_beside_their_counts(tmp_path):
    per_class = {
        str(k): {"num_samples": 140 + k, "num_real": 143, "fid": 10.0 + k, "kid_mean": 0.01 * k} for k in range(10)
    }
    for row in REPLACEMENT:
        result = make_result(*row)
        result["quality"]["domain"]["per_class"] = per_class
        write_result(tmp_path, result)
    text = build_report(tmp_path).read_text()
    assert "## Per-class FID and KID (replacement, best set: τ = 1)" in text  # lowest Top-1 error
    assert "| `3` | 143 | 143 | 13.00 | 0.0300 |" in text and "biased upwards at small counts" in text


def test_a_stopped_trial_may_leave_out_what_it_did_not_measure(tmp_path):
    stopped = gan_results()[2]
    for key in ("top1_error", "top5_error", "per_class_accuracy", "gan_train_accuracy", "kid_mean"):
        stopped.pop(key, None)
    write_result(tmp_path, stopped)
    text = build_report(tmp_path).read_text()
    assert "| gan | `gan-c` |" in text and "500 / 2000 (stopped early)" in text
    assert read_csv(tmp_path / "report.csv")["gan-c"]["top1_error"] == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "result.json: not valid JSON (Expecting property name enclosed in double quotes at line 1"),
        ("[1, 2]", "result.json: expected a JSON object, got list"),
        (
            json.dumps({"sweep": "s", "trial": "t"}),
            "result.json: missing key(s) space, training_set, class_names, config",
        ),
        (
            json.dumps(make_result(*REPLACEMENT[1]) | {"experiment": "distill"}),
            "result.json: experiment must be one of",
        ),
    ],
)
def test_corrupt_result_json_is_one_data_error_naming_the_file(sweep_dir, content, message):
    bad = sweep_dir / "trials" / "tau1" / "result.json"
    bad.write_text(content)
    with pytest.raises(DataError) as error:
        build_report(sweep_dir)
    assert str(error.value).startswith(str(bad)) and message in str(error.value)


def test_a_directory_without_results_is_a_data_error(tmp_path):
    (tmp_path / "trials" / "real").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no trials/\*/result.json to report on"):
        build_report(tmp_path)
