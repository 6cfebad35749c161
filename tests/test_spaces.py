"""The sweep spaces as declared (no Ray cluster): their points, the gan space's ASHA, YAML spaces and
their errors, trial names, the gan trial's rungs."""

from dataclasses import replace

import pytest
from ray.tune.schedulers import ASHAScheduler

from distgan.config import SweepConfig
from distgan.errors import ConfigError
from distgan.experiments.spaces import REAL_ROW, SPACES, build_space, rung_ends, with_space_fields
from distgan.experiments.trial import trial_name
from distgan.schema import KNOBS


def resolve_space(cfg):
    """(cfg with a YAML space's fields, its space), as the sweep's pre-flight makes them."""
    cfg = with_space_fields(cfg)
    return cfg, build_space(cfg)


def grid(space) -> list:
    return space.param_space["point"]["grid_search"]


def test_replacement_is_the_real_row_and_the_papers_truncations():
    space = SPACES["replacement"](SweepConfig())
    assert grid(space) == [REAL_ROW] + [{"real": False, "knob_value": tau} for tau in KNOBS["truncation"].defaults]
    assert space.experiment == "replacement" and space.num_samples == 1 and space.scheduler is None


def test_augmentation_crosses_truncations_with_fractions_plus_the_real_row():
    space = SPACES["augmentation"](SweepConfig(knob_values=(0.5, 1.0)))
    points = grid(space)
    assert points[0] == {"real": True, "knob_value": None, "fraction": 0.0}
    assert points[1:] == [{"real": False, "knob_value": t, "fraction": f} for t in (0.5, 1.0) for f in (0.25, 0.5, 1.0)]
    assert [trial_name("augmentation", {"point": p}, "x", "truncation") for p in points[:3]] == [
        "real",
        "tau0.5-frac0.25",
        "tau0.5-frac0.5",
    ]
    assert trial_name("augmentation", {"point": points[4]}, "x", "guidance") == "guidance1-frac0.25"


def test_gan_space_draws_hyperparameters_and_stops_with_asha_on_the_chosen_metric():
    cfg = SweepConfig(num_samples=5, scheduler_metric="gan_test_accuracy", rungs=4)
    space = SPACES["gan"](cfg)
    gan = space.param_space["gan"]
    assert set(gan) == {"arch", "loss", "lr_d", "lr_g", "batch_size", "iterations", "d_steps_schedule"}
    assert gan["arch"].categories == ["acgan", "biggan", "dcgan", "sngan-projection"]  # every registered one
    assert gan["loss"].categories == ["hinge", "nonsaturating", "wgan-gp"]
    assert gan["iterations"].categories == [1000, 2000]
    assert gan["d_steps_schedule"].categories == ["1", "3", "5", "5,2@1000", "5,4@500,3@1000,2@1500"]
    assert 5e-5 <= gan["lr_d"].sample() <= 1e-3
    assert isinstance(space.scheduler, ASHAScheduler) and space.num_samples == 5
    assert (space.scheduler._metric, space.scheduler._mode, space.scheduler._time_attr) == (
        "gan_test_accuracy",
        "max",
        "gan_iterations",
    )
    assert trial_name("gan", space.param_space, "ab12_00003", "truncation") == "gan-ab12_00003"


def test_fid_is_minimised():
    assert SPACES["gan"](SweepConfig()).scheduler._mode == "min"


def test_gan_test_space_is_a_generator_per_seed():
    space = SPACES["gan-test"](SweepConfig(generator_seeds=(3, 4)))
    assert space.param_space["gan"]["seed"] == {"grid_search": [3, 4]}
    params = {"point": space.param_space["point"], "gan": {"seed": 4}}
    assert trial_name("gan-test", params, "x", "truncation") == "seed4"


@pytest.mark.parametrize(("iterations", "rungs", "ends"), [(60, 2, [30, 60]), (100, 3, [33, 66, 100]), (7, 1, [7])])
def test_rungs_split_the_iterations_and_end_at_the_last(iterations, rungs, ends):
    assert rung_ends(iterations, rungs) == ends


def test_yaml_space_sets_fields_and_parameters(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "experiment: augmentation\nknob_values: [0.5]\nfractions: [1.0]\ninclude_real: false\n"
        "gan: {lr_g: [0.001, 0.002], lr_d: {loguniform: [0.0001, 0.001]}, d_steps_schedule: '5'}\n"
    )
    cfg, space = resolve_space(replace(SweepConfig(), space=str(path)))
    assert cfg.knob_values == (0.5,) and cfg.fractions == (1.0,) and not cfg.include_real
    assert grid(space) == [{"real": False, "knob_value": 0.5, "fraction": 1.0}]
    assert space.param_space["gan"]["lr_g"] == {"grid_search": [0.001, 0.002]}
    assert space.param_space["gan"]["d_steps_schedule"] == "5"
    assert 1e-4 <= space.param_space["gan"]["lr_d"].sample() <= 1e-3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("experiment: everything\n", "experiment must be one of"),
        ("experiment: gan\nrepeats: 3\n", "unknown key(s) ['repeats']"),
        ("experiment: gan\ngan: {lr_q: 0.1}\n", "unknown gan field(s) ['lr_q']"),
        ("experiment: gan\ngan: {lr_g: {normal: [0, 1]}}\n", "gan.lr_g must be a value, a list or one of"),
        ("experiment: augmentation\nfractions: [0.5, -1]\n", "--fractions must be a list of fractions > 0"),
        ("experiment: gan-test\ngan: {arch: [dcgan, stylegan]}\n", "gan.arch: --gan.arch must be one of ['acgan',"),
        ("experiment: gan\ngan: {loss: {choice: [hinge, wasserstein]}}\n", "gan.loss: --gan.loss must be one of"),
        ("experiment: gan\ngan: {lr_d: [0.001, -1]}\n", "gan.lr_d: --gan.lr-d must be > 0 (got -1"),
    ],
)
def test_yaml_space_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        resolve_space(replace(SweepConfig(), space=str(path)))
    assert message in str(err.value)


def test_yaml_gan_test_space_grids_archs_and_names_a_trial_by_each(tmp_path):
    path = tmp_path / "archs.yaml"
    path.write_text("experiment: gan-test\ngan: {arch: [dcgan, biggan], loss: wgan-gp, seed: 1}\n")
    _, space = resolve_space(replace(SweepConfig(), space=str(path)))
    assert space.param_space["gan"] == {"arch": {"grid_search": ["dcgan", "biggan"]}, "loss": "wgan-gp", "seed": 1}
    names = [trial_name("gan-test", {"point": {}, "gan": {"arch": arch, "loss": "wgan-gp", "seed": 1}}, "x", None)
             for arch in ("dcgan", "biggan")]  # fmt: skip
    assert names == ["dcgan-wgan-gp-seed1", "biggan-wgan-gp-seed1"]  # distinct directories
    assert trial_name("gan-test", {"point": {}, "gan": {"lr_g": 0.001}}, "x", None) == "lr_g0.001"


def test_yaml_gan_space_fits_asha_rungs_to_its_own_iterations(tmp_path):
    path = tmp_path / "gans.yaml"
    path.write_text("experiment: gan\ngan: {iterations: [60, 120]}\n")
    _, space = resolve_space(replace(SweepConfig(rungs=2), space=str(path)))
    assert (space.scheduler._max_t, space.scheduler._brackets[0]._rungs[-1][0]) == (120, 30)  # first rung: 60 / 2
