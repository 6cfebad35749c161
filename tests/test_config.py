"""Config tree: overrides by flag and by YAML section, validation errors that name the flag, at every entry point;
the knob's one table."""

import argparse
import pickle
from dataclasses import replace

import pytest

from distgan import cli
from distgan.config import GanConfig, SweepConfig, digest
from distgan.errors import ConfigError
from distgan.flags import add_flags, flag_hints, with_overrides
from distgan.models.checks import check_gan
from distgan.recipes import digits_quick
from distgan.schema import KNOBS, check_knob_values, knob_header, knob_label, knob_prefix
from distgan.sweep import parse_config, run
from distgan.validate import validate


def test_overrides_convert_types_and_nest():
    cfg = with_overrides(
        SweepConfig(),
        {
            "gan.lr-d": "1e-4",
            "knob-values": "0.5,1.0",
            "data": {"image_size": 32},
            "classifier.horizontal-flip": "true",
        },
    )
    assert cfg.gan.lr_d == 1e-4 and cfg.knob_values == (0.5, 1.0) and cfg.data.image_size == 32
    assert cfg.classifier.horizontal_flip is True
    assert cfg.gan.lr_g == SweepConfig().gan.lr_g  # untouched fields keep the recipe's values


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"knob-values": "0.5,-0.5"}, r"--knob-values must be truncations > 0 \(got -0.5\)"),
        ({"knob-values": "0"}, r"--knob-values must be truncations > 0 \(got 0\)"),
        ({"knob-values": "0.5,0.5"}, r"--knob-values must be distinct"),
        ({"generator.kind": "stylegan"}, r"--generator.kind must be one of \['biggan', 'diffusers', 'distgan', "),
        ({"sample.truncation-convention": "clip"}, r"--sample.truncation-convention must be one of \['resample', "),
        ({"gan.lr-d": "0"}, r"--gan.lr-d must be > 0"),
        ({"gan.lr-d": "fast"}, r"--gan.lr-d must be of type float \(got 'fast'\)"),
        ({"gan.loss": "wasserstein"}, r"--gan.loss must be one of \['hinge', 'nonsaturating', 'wgan-gp'\] \(got 'was"),
        ({"gan.nope": "1"}, r"unknown config key 'gan.nope'"),
        ({"data.image-size": "2"}, r"--data.image-size must be in \[4, 1024\]"),
        ({"classifier.warmup-fraction": "0.5"}, r"--classifier.warmup-fraction must be in \[0, 0.333333\] \(it ends"),
        ({"classifier.decay-epoch-fractions": "0.6,0.3"}, r"--classifier.decay-epoch-fractions must be increasing"),
        ({"classifier.arch": "resnet99"}, r"--classifier.arch must be one of \['resnet20', 'resnet32'"),
        ({"data.source": "imagenet"}, r"--data.source must be one of \['cifar10', 'digits'"),
        ({"data.path": "x.npz"}, r"--data.path must be unset for digits"),
        (
            {"data.image-size": "12"},
            r"--data.image-size must be 4·2\^k or 7·2\^k with k ≥ 1 .*--gan.arch sngan-projection grows .*\(got 12\)",
        ),
        ({"include-real": "maybe"}, r"--include-real must be true or false"),
        ({"gpus-per-worker": "0.5"}, r"--gpus-per-worker 0.5 with --workers-per-trial 2: the workers of a job need"),
        ({"metrics.extractors": "domain,fid"}, r"--metrics.extractors must be a list of \['clip', 'dinov2', 'domain'"),
        ({"metrics.metrics": "fid,fd"}, r"--metrics.metrics must be a list of \['is', 'fid'"),
        ({"metrics.extractors": "dinov2"}, r"--metrics.dinov2-weights must be given with --metrics.extractors dinov2"),
        ({"space": "grid"}, r"--space: unknown space 'grid'; choose from \['augmentation', 'gan', 'gan-test', "),
        ({"space": "absent.yaml"}, r"--space: absent.yaml not found"),
    ],
)
def test_bad_values_raise_config_error_naming_the_flag(overrides, message):
    with pytest.raises(ConfigError, match=message) as refused:
        validate(with_overrides(SweepConfig(), overrides))
    assert "\n" not in str(refused.value)  # one line


BAD_NAMES = {  # flag: (an unregistered value, the start of the message that refuses it)
    "--gan.arch": ("stylegan", r"^--gan.arch must be one of \['acgan', 'biggan', 'dcgan', 'sngan-projection'\]"),
    "--classifier.arch": ("resnet99", r"^--classifier.arch must be one of \['resnet20', "),
    "--generator.kind": ("stylegan", r"^--generator.kind must be one of \['biggan', 'diffusers', 'distgan', "),
}
STAGE_OF = {"--gan.arch": "train-gan", "--classifier.arch": "train-classifier", "--generator.kind": "sample"}
STAGE_ARGS = {
    "train-gan": ["--data", "shards", "--out", "out"],
    "train-classifier": ["--train", "shards", "--test", "shards", "--out", "out"],
    "sample": ["--like", "shards", "--out", "out", "--knob-value", "0.5"],
}


@pytest.mark.parametrize("flag", BAD_NAMES)
def test_every_entry_point_refuses_a_bad_name_before_any_work(flag, tmp_path, monkeypatch):
    """The config holds any name (it imports no registry); the sweep's parse, `distgan.sweep.run`, each CLI stage
    and a trial's GAN overrides refuse an unregistered one by flag, in one line, before reading any file."""
    value, message = BAD_NAMES[flag]
    cfg = with_overrides(SweepConfig(), {flag.removeprefix("--"): value})  # the config takes it: names are not its
    monkeypatch.chdir(tmp_path)  # nothing here: a stage that got past its check would fail on the missing shards
    refusals = []
    with pytest.raises(ConfigError, match=message) as refused:
        parse_config([flag, value])
    refusals.append(refused.value)
    with pytest.raises(ConfigError, match=message) as refused:
        run(cfg)
    refusals.append(refused.value)
    stage = STAGE_OF[flag]
    args = cli.build_parser().parse_args([stage, *STAGE_ARGS[stage], flag, value])
    with pytest.raises(ConfigError, match=message) as refused:
        args.run(args)
    refusals.append(refused.value)
    assert all("\n" not in str(error) for error in refusals)
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


def test_a_trials_gan_overrides_are_checked_by_name_and_size():
    with pytest.raises(ConfigError, match=r"^--gan.loss must be one of \['hinge', 'nonsaturating', 'wgan-gp'\]"):
        check_gan(replace(GanConfig(), loss="wasserstein"))
    with pytest.raises(ConfigError, match=r"^--data.image-size must be 4·2\^k or 7·2\^k .*--gan.arch dcgan .*got 12"):
        check_gan(replace(GanConfig(), arch="dcgan"), image_size=12)
    check_gan(replace(GanConfig(), arch="dcgan"), image_size=16)


def test_the_knob_table_names_each_knob_once():
    truncation, guidance = KNOBS["truncation"], KNOBS["guidance"]
    assert truncation.defaults == (0.2, 0.42, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)  # Ravuri & Vinyals (2019), Table 1
    assert guidance.defaults == (1.0, 1.5, 2.0, 3.0, 4.0)
    assert [knob_label("truncation"), knob_header("guidance"), knob_prefix("truncation")] == ["τ", "Guidance scale w",
                                                                                             "tau"]  # fmt: skip
    assert [knob_label("steps"), knob_header(None), knob_prefix("steps")] == ["steps", "Knob", "steps"]
    assert SweepConfig().knob_values == truncation.defaults  # a GAN the sweep trains: the paper's τ
    check_knob_values("guidance", (1.0,))  # the bound itself: w = 1 is plain conditional sampling
    with pytest.raises(ConfigError, match=r"^--knob-values must be guidance scales ≥ 1 \(got 0.5\)$"):
        check_knob_values("guidance", (1.5, 0.5))
    check_knob_values("steps", (-3.0,))  # a knob the table does not know takes any value


def test_digest_changes_with_any_field_and_only_then():
    base = digits_quick()
    assert digest(base.gan) == digest(digits_quick().gan)
    assert digest(base.gan) != digest(with_overrides(base, {"gan.seed": "1"}).gan)


def test_one_epoch_runs_with_the_default_warmup():
    """The warmup is a fraction of the run (the paper's 5 of 90 epochs), so any epoch count is valid."""
    cfg = with_overrides(SweepConfig(), {"classifier.epochs": "1"})
    assert cfg.classifier.epochs == 1 and cfg.classifier.warmup_fraction == pytest.approx(5 / 90)


def test_relative_paths_are_made_absolute_where_the_config_is_built(tmp_path, monkeypatch):
    """A trial or worker gets the config pickled and may run in another directory (Ray Tune changes a trial's):
    the paths it holds were resolved against the driver's working directory, once."""
    monkeypatch.chdir(tmp_path)
    cfg = with_overrides(SweepConfig(), {"results-dir": "results", "data.source": "npz", "data.path": "data/a.npz"})
    assert cfg.results_dir == tmp_path / "results" and cfg.data.path == tmp_path / "data" / "a.npz"
    assert cfg.out_dir == tmp_path / "results" / "replacement-digits"
    monkeypatch.chdir(tmp_path / "..")
    moved = pickle.loads(pickle.dumps(cfg))  # what Ray ships to a trial
    assert moved.out_dir == tmp_path / "results" / "replacement-digits" and moved.data.path == cfg.data.path


def test_every_flag_says_what_its_field_is():
    """--help shows the comment beside each field (it used to show only the default)."""
    parser = argparse.ArgumentParser()
    add_flags(parser, SweepConfig)
    flags = [action for action in parser._actions if action.dest != "help"]
    assert len(flags) == len(flag_hints(SweepConfig))
    assert [a.dest for a in flags if a.help.startswith("(default")] == []
    schedule = next(a for a in flags if a.dest == "gan.d-steps-schedule")
    assert schedule.help == (
        'D steps per G step over iterations, e.g. "5,4@5000,3@10000,2@20000"; None: the loss\'s ("2"; wgan-gp: "5") '
        "(default: None)"
    )
    assert "results_dir/cache" in next(a.help for a in flags if a.dest == "results-dir")


def test_recipes_by_name_and_quick_is_digits_quick():
    quick, _ = parse_config(["--quick"])
    assert quick == parse_config(["--recipe", "digits_quick"])[0] == digits_quick()
    assert parse_config([])[0] == SweepConfig() and parse_config([])[0].name == "replacement-digits"
    augmentation, _ = parse_config(["--space", "augmentation", "--quick"])
    assert augmentation.name == "augmentation-digits-quick"
