"""Config tree: overrides by flag and by YAML section, validation errors that name the flag."""

import argparse
import pickle

import pytest

from distgan.config import SweepConfig, digest
from distgan.errors import ConfigError
from distgan.flags import add_flags, flag_hints, with_overrides
from distgan.recipes import digits_quick
from distgan.sweep import parse_config


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
        ({"knob-values": "0"}, r"--knob-values must be truncations > 0 \(got 0.0\)"),
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
    ],
)
def test_bad_values_raise_config_error_naming_the_flag(overrides, message):
    with pytest.raises(ConfigError, match=message):
        with_overrides(SweepConfig(), overrides)


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
