"""What the NYU study read per trained GAN, end to end: a gan-test sweep of the `nyu_mnist` recipe on a small
Fashion-MNIST set from ../shared/data (28 px, as the study's MNIST), its YAML space gridding the four architectures;
each trial's result names its architecture, its loss curves and t-SNE are drawn, and the GAN table has the study's
columns. Also the t-SNE function, the recipes and the size of synthetic sets (`--sample.num-images`)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_sweep_in_process
from PIL import Image

from distgan.analysis.embedding import read_embedding, tsne_embedding, write_embedding
from distgan.config import SampleConfig, SweepConfig
from distgan.errors import ConfigError
from distgan.flags import with_overrides
from distgan.generators.synthetic import synthetic_labels
from distgan.models.gan import GAN_ARCHS
from distgan.recipes import RECIPES

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ARCHS = ("dcgan", "acgan", "sngan-projection", "biggan")
STUDY_COLUMNS = "| Arch | Loss | lr D | lr G | Batch | Iterations | D:G schedule | Seed | IS (domain) | FID (domain) |"


@pytest.fixture(scope="module")
def small_fashion_mnist(checkout) -> Path:
    """20 training and 5 test images per class of the shared Fashion-MNIST, as a `<prefix>-{train,test}.npz` pair."""
    prefix = checkout / "fmnist-small"
    for split, per_class in (("train", 20), ("test", 5)):
        source = SHARED_DATA / f"fashion_mnist-{split}.npz"
        assert source.is_file(), f"{source} missing: CI and the README run the tests with ../shared beside the clone"
        with np.load(source) as npz:
            x, y = npz["x"], npz["y"]
        keep = np.concatenate([np.flatnonzero(y == k)[:per_class] for k in range(10)])
        np.savez(f"{prefix}-{split}.npz", x=x[keep], y=y[keep])
    return prefix


@pytest.fixture(scope="module")
def arch_sweep(checkout, small_fashion_mnist, ray_session) -> Path:
    """The sweep typed in the checkout, run in this process on the session's Ray instance."""
    space = checkout / "archs.yaml"
    space.write_text(f"experiment: gan-test\ngan: {{arch: [{', '.join(ARCHS)}], seed: 0}}\n")
    flags = [
        "--recipe", "nyu_mnist", "--space", "archs.yaml", "--name", "nyu-archs",
        "--data.source", "npz", "--data.path", small_fashion_mnist.name, "--gan.iterations", "20",
        "--gan.g-width", "16", "--gan.d-width", "16", "--gan.batch-size", "32", "--sample.num-images", "60",
        "--classifier.epochs", "1", "--metrics.extractor-epochs", "1", "--metrics.kid-subsets", "10",
        "--workers-per-trial", "1", "--cpus-per-worker", "1", "--results-dir", str(checkout / "results"),
    ]  # fmt: skip
    done = run_sweep_in_process(checkout, *flags)
    assert done.out_dir == checkout / "results" / "nyu-archs"
    return done.out_dir


def test_gan_test_sweep_over_the_four_archs_draws_loss_curves_and_tsne(arch_sweep):
    results = [json.loads(path.read_text()) for path in arch_sweep.glob("trials/*/result.json")]
    results = {r["gan"]["arch"]: r for r in results}
    assert sorted(results) == sorted(ARCHS)
    for arch, result in results.items():
        trial = arch_sweep / "trials" / result["trial"]
        assert result["trial"] == f"{arch}-seed0" and result["gan"]["loss"] == "nonsaturating"
        assert result["gan"]["d_steps_schedule"] == "5,4@5000,3@10000,2@20000"  # the recipe's
        assert result["num_train_samples"] == 60  # --sample.num-images: GAN-train's classifier saw 60 images
        with (trial / "losses.csv").open() as curves:
            assert len(list(csv.DictReader(curves))) == 20  # one row per G iteration, copied from the GAN's cache
        embedding = read_embedding(trial / "tsne.csv")
        assert sorted(set(embedding["source"])) == ["generated", "real"] and len(embedding["label"]) == 2 * 60
        assert set(embedding["class"]) <= {str(k) for k in range(10)}  # the npz's class names
        for figure in ("losses.png", "tsne.png"):
            with Image.open(trial / figure) as image:
                assert image.format == "PNG" and image.width > 300
    assert "d_class_loss" in (arch_sweep / "trials" / "acgan-seed0" / "losses.csv").read_text().splitlines()[0]
    report = (arch_sweep / "report.md").read_text()
    assert STUDY_COLUMNS in report and "| GAN-train (%) | GAN-test (%) |" in report
    for arch in ARCHS:
        assert f"| gan-test | `{arch}-seed0` | {arch} | nonsaturating | 2.00e-04 | 2.00e-04 | 32 | 20 |" in report
        assert f"![t-SNE {arch}-seed0](trials/{arch}-seed0/tsne.png)" in report
        assert f"![losses {arch}-seed0](trials/{arch}-seed0/losses.png)" in report
    assert "each generator's set: 60 images in the real training split's class proportions" in report
    assert "- gan-test `acgan-seed0` (acgan, nonsaturating): ![losses acgan-seed0]" in report


def test_tsne_embeds_as_many_real_as_generated_points_deterministically(tmp_path):
    rng = np.random.default_rng(0)
    real_ND, real_labels_N = rng.normal(size=(300, 80)), np.repeat(np.arange(3), 100)  # wider than PCA_DIMS
    fake_ND, fake_labels_N = rng.normal(size=(90, 80)) + 3, np.tile(np.arange(3), 30)
    embedding = tsne_embedding(real_ND, real_labels_N, fake_ND, fake_labels_N, seed=1, points_per_side=120)
    assert embedding["xy_N2"].shape == (180, 2) and np.isfinite(embedding["xy_N2"]).all()
    assert list(embedding["source"]).count("real") == 90  # as many of each, the smaller set's size
    assert np.bincount(embedding["label"][:90]).tolist() == [30, 30, 30]  # spread evenly over the class-sorted set
    again = tsne_embedding(real_ND, real_labels_N, fake_ND, fake_labels_N, seed=1, points_per_side=120)
    assert np.array_equal(embedding["xy_N2"], again["xy_N2"])
    other = tsne_embedding(real_ND, real_labels_N, fake_ND, fake_labels_N, seed=2, points_per_side=120)
    assert not np.allclose(embedding["xy_N2"], other["xy_N2"])  # the seed is what makes it reproducible
    write_embedding(tmp_path / "tsne.csv", embedding, ["a", "b", "c"])
    read = read_embedding(tmp_path / "tsne.csv")
    assert read["class"][:3].tolist() == ["a", "a", "a"] and np.allclose(read["xy_N2"], embedding["xy_N2"], atol=1e-6)
    # Real and generated features, 3 apart in every dimension, stay apart in the embedding.
    xy, real = embedding["xy_N2"], embedding["source"] == "real"
    assert np.linalg.norm(xy[real].mean(0) - xy[~real].mean(0)) > 2 * xy[real].std(0).mean()


def test_nyu_recipes_are_the_studys_setup():
    for name, source, size in (("nyu_mnist", "mnist", 28), ("nyu_cifar10", "cifar10", 32)):
        cfg = RECIPES[name]()
        assert (cfg.space, cfg.data.source, cfg.data.image_size) == ("gan-test", source, size)
        c = cfg.classifier
        assert (c.arch, c.epochs, c.batch_size, c.base_lr * c.batch_size / c.reference_batch_size) == (
            "resnet32", 80, 100, 0.001,
        )  # fmt: skip
        assert cfg.metrics.extractor_epochs == 80  # GAN-test's classifier, trained on the real images, is the same
        assert cfg.sample.num_images == 10_000
        assert cfg.gan.d_steps_schedule == "5,4@5000,3@10000,2@20000" and cfg.gan.arch in ("dcgan", "acgan")
        assert cfg.gan.iterations > 20_000  # the schedule's last phase is reached
    assert RECIPES["nyu_cifar10"]().classifier.horizontal_flip and not RECIPES["nyu_mnist"]().classifier.horizontal_flip
    # Runnable on the shared arrays: the npz source at the recipe's sizes, every architecture at 28 px.
    shared = {"data.source": "npz", "data.path": str(SHARED_DATA / "fashion_mnist")}
    cfg = with_overrides(RECIPES["nyu_mnist"](), shared)
    assert cfg.data.path == SHARED_DATA / "fashion_mnist"
    for arch in GAN_ARCHS:
        with_overrides(cfg, {"gan.arch": arch})


def test_num_images_sizes_synthetic_sets_in_the_real_class_proportions():
    counts = [143, 150, 100, 7]
    labels_N = synthetic_labels(counts, seed=3, num_images=1000)
    assert len(labels_N) == 1000
    assert np.bincount(labels_N).tolist() == [358, 375, 250, 17]  # 1000·count/400; the tied remainder to class 0
    assert np.bincount(synthetic_labels(counts, seed=3)).tolist() == counts  # 0: one per real training image
    assert not np.array_equal(labels_N[:50], np.sort(labels_N[:50]))  # shuffled
    with pytest.raises(ConfigError, match=r"--sample.num-images must be ≥ 0 .*\(got -1\)"):
        SampleConfig(num_images=-1)
    assert SweepConfig().sample.num_images == 0
