"""The GAN architectures and losses (docs/gans.md): native image sizes, the objectives against independent
computations, AC-GAN's class terms, BigGAN's weight average, exact resume, and every architecture × loss on 2 gloo
workers under DDP and DeepSpeed (one torchrun job: this file run as a script, see `job`)."""

import csv
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import REPO
from torch import nn

from distgan.analysis.gan_curves import loss_curves_figure, read_loss_curves
from distgan.config import DataConfig, EngineConfig, GanConfig, SweepConfig
from distgan.data.sources import load_split
from distgan.errors import ConfigError
from distgan.flags import with_overrides
from distgan.models.gan import GAN_ARCHS, load_generator
from distgan.models.gans.dcgan import DcganDiscriminator
from distgan.models.gans.ema import GeneratorAverage
from distgan.models.gans.losses import GAN_LOSSES, discriminator_terms, generator_terms, gradient_penalty
from distgan.runtime import distributed
from distgan.runtime.atomic import load_plain
from distgan.train.gan import build_gan, curve_columns, resolved_gan, save_generator, train_gan
from distgan.validate import validate, validate_section

ARCHS, LOSSES = sorted(GAN_ARCHS), sorted(GAN_LOSSES)
# Exact resume: each architecture once, each loss at least once (the first architecture's hinge run is
# test_training.py's).
RESUMED = [("dcgan", "nonsaturating"), ("acgan", "wgan-gp"), ("biggan", "hinge"), ("sngan-projection", "wgan-gp")]
ENV = os.environ | {
    "OMP_NUM_THREADS": "1",  # two ranks do not oversubscribe two cores
    "PYTHONUNBUFFERED": "1",
    # DeepSpeed's JIT-compiled extension, built once into the folder test_gpu_paths.py keeps it in.
    "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions")),
}


def tiny(arch: str, loss: str, **changes) -> GanConfig:
    """A GAN that trains in milliseconds per iteration: every architecture and loss runs in the tests."""
    fields = dict(arch=arch, loss=loss, latent_dim=12, g_width=4, d_width=4, batch_size=8, iterations=4)
    return GanConfig(**fields | {"d_steps_schedule": "2"} | changes)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is fastest, and two spin against each other on a busy two-core machine (measured
    3.7 s against 0.03 s for the same five iterations)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits8():
    return load_split("digits", "train", image_size=8)


# Architectures and their sizes.


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_makes_native_sizes_in_range(arch, tmp_path):
    # 28 px as MNIST (7 → 14 → 28), 32 as CIFAR-10, 8 and 14 the smallest of each family.
    for size, channels in ((8, 1), (14, 3), (28, 1), (32, 3)):
        generator, discriminator = build_gan(tiny(arch, "hinge"), num_classes=10, image_size=size, channels=channels)
        assert (generator.latent_dim, generator.num_classes) == (12, 10)
        labels = torch.arange(5)
        images = generator(torch.randn(5, 12), labels)
        assert images.shape == (5, channels, size, size) and images.abs().max() <= 1
        logits = discriminator(images, labels)
        logits, classes = logits if isinstance(logits, tuple) else (logits, None)
        assert logits.shape == (5,)
        assert GAN_ARCHS[arch].class_head == (classes is not None) and (classes is None or classes.shape == (5, 10))
    # The generator file rebuilds the architecture it records (the last size: 32 px, 3 channels).
    save_generator(tmp_path / "g.pt", generator, tiny(arch, "hinge"), image_size=32, channels=3)
    z = torch.randn(3, 12)
    torch.testing.assert_close(load_generator(tmp_path / "g.pt").eval()(z, labels[:3]), generator.eval()(z, labels[:3]))


def test_sizes_an_arch_cannot_make_are_refused_naming_arch_and_rule():
    rule = r"4·2\^k or 7·2\^k with k ≥ 1 \(8, 14, 16, 28, 32, .*--gan.arch dcgan grows a 4×4 or 7×7 map"
    with pytest.raises(ConfigError, match=rf"^--data.image-size must be {rule} by ×2 stages \(got 12\)$"):
        validate(SweepConfig(data=DataConfig(image_size=12), gan=GanConfig(arch="dcgan")))
    assert validate(SweepConfig(data=DataConfig(image_size=28))).data.image_size == 28  # MNIST's own size, any arch
    with pytest.raises(ConfigError, match=rf"GAN image size must be {rule}.*\(got 24\)"):
        build_gan(GanConfig(arch="dcgan"), num_classes=10, image_size=24, channels=1)
    with pytest.raises(ConfigError, match=r"--gan.latent-dim must be ≥ 4 for --gan.arch biggan at 32 px"):
        build_gan(GanConfig(arch="biggan", latent_dim=3), num_classes=10, image_size=32, channels=1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"arch": "stylegan"},
            r"^--gan.arch must be one of \['acgan', 'biggan', 'dcgan', 'sngan-projection'\] "
            r"\(got 'stylegan'\)$",
        ),  # fmt: skip
        ({"loss": "wgan"}, r"^--gan.loss must be one of \['hinge', 'nonsaturating', 'wgan-gp'\] \(got 'wgan'\)$"),
        ({"gradient_penalty_weight": "0"}, r"--gan.gradient-penalty-weight must be > 0 \(got 0.0\)"),
        ({"beta1": "1"}, r"--gan.beta1 must be in \[0, 1\) or none"),
        ({"ema_decay": "1"}, r"--gan.ema-decay must be in \[0, 1\) \(got 1.0\)"),
        ({"ema_start": "-1"}, r"--gan.ema-start must be ≥ 0 \(got -1\)"),
    ],
)
def test_bad_gan_fields_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_section(with_overrides(GanConfig(), overrides))


def test_the_schedule_and_betas_follow_the_loss_unless_set():
    assert (resolved_gan(GanConfig()).d_steps_schedule, resolved_gan(GanConfig()).beta1) == ("2", 0.0)
    # As the CLI builds it: the default config, then --gan.loss wgan-gp.
    wgan = resolved_gan(with_overrides(GanConfig(), {"loss": "wgan-gp"}))
    assert (wgan.d_steps_schedule, wgan.beta1, wgan.beta2) == ("5", 0.0, 0.9)  # Gulrajani et al., Algorithm 1
    assert resolved_gan(GanConfig(loss="wgan-gp", d_steps_schedule="3", beta2=0.99)).d_steps_schedule == "3"
    assert resolved_gan(GanConfig(loss="wgan-gp", beta2=0.99)).beta2 == 0.99


# The objectives.


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1)).double()
    linear = lambda x, y: critic(x).squeeze(1)  # noqa: E731
    real, fake = torch.randn(6, 3, 2, 2, dtype=torch.float64), torch.randn(6, 3, 2, 2, dtype=torch.float64)
    penalty = gradient_penalty(linear, real, fake, torch.zeros(6, dtype=torch.int64), torch.rand(6))
    # ∇_x ⟨w, x⟩ + b = w at every x̂, whatever α.
    torch.testing.assert_close(penalty, (critic[1].weight.norm() - 1) ** 2, rtol=1e-12, atol=0)


def test_gradient_penalty_and_its_weight_gradient_match_an_independent_computation():
    torch.manual_seed(0)
    critic = DcganDiscriminator(num_classes=3, image_size=8, channels=1, width=4, layer_norm=True).double().eval()
    real, fake = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.randn(4, 1, 8, 8, dtype=torch.float64)
    labels, alpha = torch.tensor([0, 1, 2, 1]), torch.rand(4, dtype=torch.float64)

    def one_by_one() -> torch.Tensor:  # each sample alone: no batch sum, no broadcasting
        norms = []
        for i in range(4):
            mixed = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i])[None].requires_grad_(True)
            (grad,) = torch.autograd.grad(critic(mixed, labels[i : i + 1])[0], mixed)
            norms.append(math.sqrt(float((grad**2).sum())))
        return torch.tensor(sum((n - 1) ** 2 for n in norms) / 4, dtype=torch.float64)

    penalty = gradient_penalty(critic, real, fake, labels, alpha)
    torch.testing.assert_close(penalty, one_by_one(), rtol=1e-10, atol=0)
    # D learns from it (create_graph): its gradient along a weight direction equals the finite difference.
    weight = critic.logit.weight
    (analytic,) = torch.autograd.grad(penalty, weight)
    direction, eps = torch.randn_like(weight), 1e-6
    weight.data += eps * direction
    above = one_by_one()
    weight.data -= 2 * eps * direction
    below = one_by_one()
    torch.testing.assert_close((analytic * direction).sum(), (above - below) / (2 * eps), rtol=1e-5, atol=1e-9)


def test_class_head_terms_join_both_losses_as_in_acgan():
    torch.manual_seed(0)
    real, fake = (torch.randn(5), torch.randn(5, 4)), (torch.randn(5), torch.randn(5, 4))
    y_real, y_fake = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 2, 1, 0, 1])

    def cross_entropy(logits, y):  # −log softmax, by hand
        return -(logits.gather(1, y[:, None]).squeeze(1) - logits.exp().sum(1).log()).mean()

    hinge = GAN_LOSSES["hinge"]
    d = discriminator_terms(hinge, real, fake, y_real, y_fake)
    class_d = cross_entropy(real[1], y_real) + cross_entropy(fake[1], y_fake)
    torch.testing.assert_close(d["d_class_loss"], class_d)
    torch.testing.assert_close(
        d["d_loss"], (1 - real[0]).clamp(min=0).mean() + (1 + fake[0]).clamp(min=0).mean() + class_d
    )
    g = generator_terms(hinge, fake, y_fake)
    torch.testing.assert_close(g["g_loss"], -fake[0].mean() + cross_entropy(fake[1], y_fake))
    # Without a class head, the adversarial terms alone.
    assert discriminator_terms(hinge, real[0], fake[0], y_real, y_fake).keys() == {"d_loss"}
    assert generator_terms(hinge, fake[0], y_fake).keys() == {"g_loss"}


def test_losses_of_every_iteration_are_kept_with_the_class_and_penalty_terms(digits8, tmp_path):
    cfg = tiny("acgan", "wgan-gp", iterations=5, d_steps_schedule=None)  # wgan-gp's own schedule: 5 D steps
    _, info = train_gan(cfg, digits8, progress=False)
    curves = info["loss_curves"]
    assert list(curves) == ["iteration", "d_loss", "g_loss", "d_class_loss", "g_class_loss", "gradient_penalty"]
    assert curves["iteration"] == list(range(5)) and all(len(values) == 5 for values in curves.values())
    assert info["num_d_steps"] == 25
    # 10 classes: CE ≈ ln 10 per term at the start; the terms are in the losses the players minimise.
    assert 1.5 < curves["g_class_loss"][0] < 3.5 and 3 < curves["d_class_loss"][0] < 7
    assert all(p > 0 for p in curves["gradient_penalty"])
    # The penalty is in D's loss with its weight λ: at λ = 10⁴ it outweighs the Wasserstein term (a few units).
    _, heavy = train_gan(replace(cfg, iterations=1, gradient_penalty_weight=1e4), digits8, progress=False)
    d_loss, d_class_loss, penalty = (
        heavy["loss_curves"][name][0] for name in ("d_loss", "d_class_loss", "gradient_penalty")
    )
    assert 1e4 * penalty > 50 and abs(d_loss - d_class_loss - 1e4 * penalty) < 5
    assert [row["iteration"] for row in info["losses"]] == [0, 4]
    # The figure of them: left D and G, right the class losses and the penalty.
    from distgan.train.gan import write_loss_curves

    write_loss_curves(tmp_path / "losses.csv", curves)
    read = read_loss_curves(tmp_path / "losses.csv")
    assert list(read["iteration"]) == list(range(5))
    torch.testing.assert_close(
        torch.tensor(read["g_class_loss"]), torch.tensor(curves["g_class_loss"], dtype=torch.float64)
    )
    loss_curves_figure(tmp_path / "losses.csv", tmp_path / "losses.png")
    assert (tmp_path / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert curve_columns(tiny("dcgan", "hinge")) == ("d_loss", "g_loss")


# BigGAN's moving average of G.


def test_the_weight_average_follows_its_formula():
    generator = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = GeneratorAverage(generator, decay=0.9, start=3)
    assert [average.decay_at(i) for i in (0, 2, 3, 4, 1000)] == [0.0, 0.0, 0.1, 2 / 11, 0.9]
    before = {k: v.clone() for k, v in average.module.state_dict().items()}
    with torch.no_grad():
        generator[0].weight += 1
    generator[1].num_batches_tracked += 7
    average.update(generator, 1000)
    after = average.module.state_dict()
    torch.testing.assert_close(after["0.weight"], 0.9 * before["0.weight"] + 0.1 * generator[0].weight)
    assert after["1.num_batches_tracked"] == 7  # not averaged: copied
    average.update(generator, 0)  # before the start: a copy of G
    torch.testing.assert_close(after["0.weight"], generator[0].weight, rtol=0, atol=0)


def test_biggan_saves_the_weight_average_not_the_trained_generator(digits8, tmp_path):
    cfg = tiny("biggan", "hinge", iterations=4, ema_decay=0.5)
    checkpoints = tmp_path / "checkpoints"
    engine = EngineConfig(checkpoint_every_steps=4)
    sampled, _ = train_gan(cfg, digits8, engine_cfg=engine, checkpoint_dir=checkpoints, progress=False)
    save_generator(tmp_path / "generator.pt", sampled, cfg, image_size=8, channels=1)
    saved = load_generator(tmp_path / "generator.pt").state_dict()
    average = load_plain(checkpoints / "step000000004" / "generator_average" / "average.pt")
    trained = load_plain(checkpoints / "step000000004" / "generator" / "engine.pt")["module"]
    assert saved.keys() == average.keys() == trained.keys()
    for key in saved:
        torch.testing.assert_close(saved[key], average[key], rtol=0, atol=0, msg=key)
    assert not torch.equal(saved["project.0.weight_orig"], trained["project.0.weight_orig"])


# Exact resume.


@pytest.mark.parametrize(("arch", "loss"), RESUMED)
def test_each_arch_resumes_from_its_checkpoint_exactly(digits8, tmp_path, arch, loss):
    cfg, engine = tiny(arch, loss, iterations=4), EngineConfig(checkpoint_every_steps=2)
    whole, whole_info = train_gan(cfg, digits8, engine_cfg=engine, checkpoint_dir=tmp_path / "a", progress=False)
    train_gan(replace(cfg, iterations=2), digits8, engine_cfg=engine, checkpoint_dir=tmp_path / "b", progress=False)
    resumed, info = train_gan(cfg, digits8, engine_cfg=engine, checkpoint_dir=tmp_path / "b", progress=False)
    assert info == whole_info  # step counts and every iteration's losses
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)


# Every architecture and loss on 2 gloo workers under DDP; each architecture and each loss under DeepSpeed.

BACKENDS = ("ddp", "deepspeed")
JOB_ITERATIONS = 4  # with a checkpoint every 2 for the RESUMED runs, resumed from iteration 2 in a second run


def two_worker_combos(backend: str) -> list[tuple[str, str]]:
    return [(arch, loss) for arch in ARCHS for loss in LOSSES] if backend == "ddp" else RESUMED


@pytest.fixture(scope="module")
def two_worker_runs(tmp_path_factory, digits_shards) -> Path:
    out = tmp_path_factory.mktemp("two-workers")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", __file__, str(out)]
    done = subprocess.run(command + [str(digits_shards / "train")], capture_output=True, text=True, timeout=300,
                          env=ENV, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_archs_and_losses_train_on_two_workers(two_worker_runs, backend):
    for arch, loss in two_worker_combos(backend):
        run = two_worker_runs / backend / f"{arch}-{loss}"
        with (run / "losses.csv").open() as rows:
            table = list(csv.DictReader(rows))
        assert list(table[0]) == ["iteration", *curve_columns(tiny(arch, loss))]
        assert [int(row["iteration"]) for row in table] == list(range(JOB_ITERATIONS))
        assert all(math.isfinite(float(value)) for row in table for value in row.values())
        generator = load_generator(run / "generator.pt").eval()
        assert generator(torch.zeros(2, 12), torch.tensor([0, 9])).shape == (2, 1, 16, 16)
        saved = load_plain(run / "generator.pt")["gan_config"]
        assert (saved["arch"], saved["loss"], saved["d_steps_schedule"]) == (arch, loss, "2")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_resume_exactly(two_worker_runs, backend):
    for arch, loss in RESUMED:
        whole, resumed = two_worker_runs / backend / f"{arch}-{loss}", two_worker_runs / backend / f"{arch}-resumed"
        assert (resumed / "checkpoints" / "latest").read_text() == "step000000004\n"
        expected = load_plain(whole / "generator.pt")["state_dict"]
        for key, value in load_plain(resumed / "generator.pt")["state_dict"].items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=f"{arch} {key}")
        assert (resumed / "losses.csv").read_text() == (whole / "losses.csv").read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_penalised_d_step_on_two_workers_equals_one_process_on_the_whole_batch(two_worker_runs, backend):
    found = torch.load(two_worker_runs / backend / "penalty-step.pt", weights_only=True)
    assert found["one_process"].keys() == found["two_workers"].keys()
    for key, value in found["one_process"].items():
        # float32 sums in another order: gradients ~1e-5 apart, times the learning rate 0.1.
        torch.testing.assert_close(found["two_workers"][key], value, rtol=0, atol=1e-5, msg=key)


def penalty_step(backend: str, shape: tuple[int, ...] = (8, 1, 8, 8)) -> dict:
    """One D step with the gradient penalty (as the loop takes it: the penalty on the plain module) on this rank's
    half of a batch, and the same step of one process on the whole batch, here on every rank."""
    from distgan.train.engine import build_engine

    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    alpha = torch.rand(8, generator=generator)
    labels = torch.arange(8) % 3

    def loss_of(model, plain, rows):
        logits = model(torch.cat([real[rows], fake[rows]]), torch.cat([labels[rows], labels[rows]]))
        return (
            logits[len(real[rows]) :].mean()
            - logits[: len(real[rows])].mean()
            + 10 * gradient_penalty(plain, real[rows], fake[rows], labels[rows], alpha[rows])
        )

    def critic():
        torch.manual_seed(0)
        return build_gan(tiny("sngan-projection", "wgan-gp"), num_classes=3, image_size=8, channels=1)[1]

    alone = critic()
    optimizer = torch.optim.SGD(alone.parameters(), lr=0.1)
    loss_of(alone, alone, slice(None)).backward()
    optimizer.step()
    mine = slice(4 * distributed.rank(), 4 * distributed.rank() + 4)
    module = critic()
    engine = build_engine(module, torch.optim.SGD(module.parameters(), lr=0.1), None, EngineConfig(backend=backend),
                          device=torch.device("cpu"), micro_batch_size=4)  # fmt: skip
    engine.train_step([mine], lambda model, rows: loss_of(model, engine.module, rows))
    return {"one_process": alone.state_dict(), "two_workers": engine.module.state_dict()}


def job(out: Path, train_dir: Path) -> None:
    """Under torchrun, 2 workers, on each backend: the penalised D step, and `two_worker_combos` for JOB_ITERATIONS
    iterations, those of RESUMED with checkpoints and again, stopped at iteration 2 and resumed; the tests above
    read what it wrote."""
    from distgan.jobs.gan import GanJob, gan_worker

    distributed.init_from_env()
    for backend in BACKENDS:
        step = penalty_step(backend)
        if distributed.rank() == 0:
            (out / backend).mkdir()
            torch.save(step, out / backend / "penalty-step.pt")
        for arch, loss in two_worker_combos(backend):
            cfg = tiny(arch, loss, iterations=JOB_ITERATIONS)
            engine = EngineConfig(backend=backend, checkpoint_every_steps=2 * ((arch, loss) in RESUMED))
            gan_worker(GanJob(gan=cfg, engine=engine, train_dir=train_dir, out_dir=out / backend / f"{arch}-{loss}",
                              progress=False))  # fmt: skip
            for iterations in (2, JOB_ITERATIONS) if engine.checkpoint_every_steps else ():
                gan_worker(GanJob(gan=replace(cfg, iterations=iterations), engine=engine, train_dir=train_dir,
                                  out_dir=out / backend / f"{arch}-resumed", progress=False))  # fmt: skip


if __name__ == "__main__":
    job(Path(sys.argv[1]), Path(sys.argv[2]))
    distributed.shutdown(wait_for_others=True)
    distributed.exit_process(0)
