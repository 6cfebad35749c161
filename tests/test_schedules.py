"""The D:G step schedule and the classifier's learning-rate schedule, value by value."""

import pytest

from distgan.config import parse_d_steps_schedule
from distgan.errors import ConfigError
from distgan.train.schedules import d_steps_at, goyal_learning_rate, lr_multiplier


def test_d_steps_schedule_follows_the_paper_example():
    schedule = parse_d_steps_schedule("5,4@5000,3@10000,2@20000")
    assert schedule == ((0, 5), (5000, 4), (10000, 3), (20000, 2))
    expected = {0: 5, 4999: 5, 5000: 4, 9999: 4, 10000: 3, 19999: 3, 20000: 2, 10**6: 2}
    assert {it: d_steps_at(schedule, it) for it in expected} == expected


@pytest.mark.parametrize("text", ["", "0", "5,4", "5,4@100,3@50", "4@10", "x", "5,a@3"])
def test_bad_d_steps_schedule_is_named(text):
    with pytest.raises(ConfigError, match="--gan.d-steps-schedule"):
        parse_d_steps_schedule(text)


def test_goyal_linear_scaling():
    assert goyal_learning_rate(0.1, 256, 256) == pytest.approx(0.1)
    assert goyal_learning_rate(0.1, 8192, 256) == pytest.approx(3.2)  # Goyal et al.'s 8k batch
    assert goyal_learning_rate(0.1, 128, 256) == pytest.approx(0.05)


def test_lr_multiplier_warmup_then_steps_at_30_60_80_of_90_epochs():
    steps_per_epoch, epochs = 10, 90
    total = steps_per_epoch * epochs
    fractions = (30 / 90, 60 / 90, 80 / 90)

    def at_epoch(epoch: float) -> float:
        step = int(epoch * steps_per_epoch)
        return lr_multiplier(step, total_steps=total, warmup_steps=5 * steps_per_epoch, decay_fractions=fractions)

    # Linear warmup from 0.0 over 5 epochs (the paper's words): 0/50, 1/50, ..., then 1 from step 50.
    assert lr_multiplier(0, total_steps=total, warmup_steps=50, decay_fractions=fractions) == 0.0
    assert lr_multiplier(25, total_steps=total, warmup_steps=50, decay_fractions=fractions) == pytest.approx(25 / 50)
    assert lr_multiplier(49, total_steps=total, warmup_steps=50, decay_fractions=fractions) == pytest.approx(49 / 50)
    assert at_epoch(5) == pytest.approx(1.0)
    assert at_epoch(29.9) == pytest.approx(1.0)
    assert at_epoch(30) == pytest.approx(0.1)
    assert at_epoch(59.9) == pytest.approx(0.1)
    assert at_epoch(60) == pytest.approx(0.01)
    assert at_epoch(80) == pytest.approx(0.001)
    assert at_epoch(89.9) == pytest.approx(0.001)
