"""Config tree: overrides by flag and by YAML section, validation errors that name the flag."""

import pytest

from distgan.config import SweepConfig, digest, with_overrides
from distgan.errors import ConfigError
from distgan.recipes import digits_quick


def test_overrides_convert_types_and_nest():
    cfg = with_overrides(
        SweepConfig(),
        {
            "gan.lr-d": "1e-4",
            "truncations": "0.5,1.0",
            "data": {"image_size": 32},
            "classifier.horizontal-flip": "true",
        },
    )
    assert cfg.gan.lr_d == 1e-4 and cfg.truncations == (0.5, 1.0) and cfg.data.image_size == 32
    assert cfg.classifier.horizontal_flip is True
    assert cfg.gan.lr_g == SweepConfig().gan.lr_g  # untouched fields keep the recipe's values


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"truncations": "0.5,-0.5"}, r"--truncations must be .*> 0 \(got -0.5\)"),
        ({"truncations": "0"}, r"--truncations must be .*> 0 \(got 0.0\)"),
        ({"gan.lr-d": "0"}, r"--gan.lr-d must be > 0"),
        ({"gan.lr-d": "fast"}, r"--gan.lr-d must be of type float \(got 'fast'\)"),
        ({"gan.loss": "wasserstein"}, r"--gan.loss must be 'hinge' or 'nonsaturating'"),
        ({"gan.nope": "1"}, r"unknown config key 'gan.nope'"),
        ({"data.image-size": "2"}, r"--data.image-size must be in \[4, 1024\]"),
        ({"classifier.warmup-epochs": "50", "classifier.epochs": "10"}, r"--classifier.warmup-epochs"),
        ({"include-real": "maybe"}, r"--include-real must be true or false"),
    ],
)
def test_bad_values_raise_config_error_naming_the_flag(overrides, message):
    with pytest.raises(ConfigError, match=message):
        with_overrides(SweepConfig(), overrides)


def test_digest_changes_with_any_field_and_only_then():
    base = digits_quick()
    assert digest(base.gan) == digest(digits_quick().gan)
    assert digest(base.gan) != digest(with_overrides(base, {"gan.seed": "1"}).gan)
