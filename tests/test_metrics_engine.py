"""The metrics front door and its files: reference statistics in pytorch-fid's layout and ours, the cache (hit,
miss on any identity change, never stale), per-class scores, and `distgan metrics` driven as a user would."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from distgan.data.sources import load_split
from distgan.errors import ConfigError, DataError
from distgan.metrics.engine import ImageSet, MetricOptions, compute, parse_metrics
from distgan.metrics.extraction import ImageSource, extract
from distgan.metrics.extractors import EXTRACTORS, register_extractor, wrap_model
from distgan.metrics.fid import frechet_distance
from distgan.metrics.inception_score import inception_score
from distgan.metrics.kid import kernel_inception_distance
from distgan.metrics.prdc import precision_recall_density_coverage
from distgan.metrics.reference_stats import (
    ReferenceStats,
    cached_stats,
    load_stats,
    save_pytorch_fid_npz,
    save_stats,
)
from distgan.models.classifiers import save_classifier, small_cnn
from distgan.peers import load_function


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    return wrap_model("domain", small_cnn(1, 10))


@pytest.fixture(scope="module")
def digits():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    return ImageSet(ImageSource.from_array(train.images_NHWC, train.labels_N), "train-digest"), ImageSet(
        ImageSource.from_array(test.images_NHWC, test.labels_N), None
    )


def test_compute_equals_the_metric_functions_on_the_same_extraction(extractor, digits):
    real, fake = digits
    opts = MetricOptions(kid_subsets=5, kid_subset_size=200)
    scores = compute(real, fake, metrics=["is", "fid", "kid", "pr"], extractor=extractor, per_class=True, options=opts)
    real_x = extract(extractor, real.source, keep_features=True, per_class=True)
    fake_x = extract(extractor, fake.source, keep_features=True, per_class=True)
    mu_r, sigma_r = real_x.stats.mean_and_covariance()
    assert scores["fid"] == pytest.approx(frechet_distance(*fake_x.stats.mean_and_covariance(), mu_r, sigma_r))
    assert scores["inception_score_mean"] == pytest.approx(inception_score(fake_x.logits_NK)[0])
    kid = kernel_inception_distance(real_x.feats_ND, fake_x.feats_ND, num_subsets=5, subset_size=200)
    assert scores["kid_mean"] == pytest.approx(kid[0])
    pr = precision_recall_density_coverage(real_x.feats_ND, fake_x.feats_ND, k=5)
    assert scores["precision"] == pytest.approx(pr["precision"]) and scores["coverage"] == pytest.approx(pr["coverage"])
    per_class = scores["per_class"]
    assert len(per_class) == 10 and sum(entry["num_samples"] for entry in per_class.values()) == 360
    # Per-class FID and KID on each class's kept features, beside the counts they rest on.
    labels_r, labels_f = real.source.labels_N, fake.source.labels_N
    three_real = real_x.feats_ND[torch.as_tensor(labels_r == 3)].double().numpy()
    three_fake = fake_x.feats_ND[torch.as_tensor(labels_f == 3)].double().numpy()
    direct = frechet_distance(three_fake.mean(0), np.cov(three_fake, rowvar=False), three_real.mean(0),
                              np.cov(three_real, rowvar=False))  # fmt: skip
    assert per_class["3"]["fid"] == pytest.approx(direct, rel=1e-6)
    assert per_class["3"]["fid"] > 0 and per_class["3"]["inception_score_mean"] >= 1.0
    size = int(min((labels_r == 3).sum(), (labels_f == 3).sum()))
    three_kid = kernel_inception_distance(real_x.feats_ND[torch.as_tensor(labels_r == 3)],
                                          fake_x.feats_ND[torch.as_tensor(labels_f == 3)], num_subsets=5,
                                          subset_size=size)  # fmt: skip
    assert per_class["3"]["kid_mean"] == pytest.approx(three_kid[0])
    assert per_class["3"]["num_real"] == int((labels_r == 3).sum()) and per_class["3"]["kid_subset_size"] < 200


def test_each_metric_is_asked_only_of_a_space_that_defines_it(extractor, digits):
    """IS needs class logits; CMMD is defined on CLIP embeddings: a sweep drops them where undefined
    (`applicable`), a user asking for them there gets one clear error."""
    from dataclasses import replace

    from distgan.metrics.engine import applicable

    real, fake = digits
    featureless = replace(extractor, name="inception", has_logits=False)
    assert applicable(["is", "fid", "kid", "cmmd"], extractor) == ["is", "fid", "kid"]
    assert applicable(["is", "fid", "cmmd"], featureless) == ["fid"]
    assert applicable(["fid", "cmmd"], replace(featureless, name="clip")) == ["fid", "cmmd"]
    with pytest.raises(ConfigError, match="the inception feature space has no class logits"):
        compute(real, fake, metrics=["is"], extractor=featureless)
    with pytest.raises(ConfigError, match="--metrics cmmd: defined in the clip feature space only"):
        compute(real, fake, metrics=["cmmd"], extractor=extractor)


def test_statistics_alone_serve_fid_but_not_kid(extractor, digits):
    real, fake = digits
    ref = ReferenceStats.from_stats(extract(extractor, real.source).stats)
    with_images = compute(real, fake, metrics=["fid"], extractor=extractor)
    with_stats = compute(ref, fake, metrics=["fid"], extractor=extractor)
    assert with_stats["fid"] == pytest.approx(with_images["fid"], rel=1e-12)
    with pytest.raises(ConfigError, match="kid, pr and cmmd need the real images"):
        compute(ref, fake, metrics=["kid"], extractor=extractor)
    with pytest.raises(ConfigError, match="--metrics"):
        parse_metrics("is,fid,precision")


def test_stats_files_are_read_by_pytorch_fid(tmp_path, extractor, digits):
    read_npz = load_function(
        "pytorch_fid", "fid_score.py", "compute_statistics_of_path",
        ("torchvision", "torchvision.transforms", "pytorch_fid.inception"),
    )  # fmt: skip
    x = extract(extractor, digits[0].source)
    ref = ReferenceStats.from_stats(x.stats, identity={"k": 1})
    save_pytorch_fid_npz(tmp_path / "theirs.npz", ref)
    save_stats(tmp_path / "ours.npz", ref)
    for name in ("theirs.npz", "ours.npz"):
        mu, sigma = read_npz(str(tmp_path / name), None, 50, 2048, "cpu", 1)
        np.testing.assert_array_equal(mu, ref.mu_D)
        np.testing.assert_array_equal(sigma, ref.sigma_DD)
    ours = load_stats(tmp_path / "ours.npz")
    assert ours.count == 1437 and ours.identity == {"k": 1}
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz"):
        load_stats(tmp_path / "broken.npz")


def test_cache_hits_when_valid_and_recomputes_on_any_identity_change(tmp_path):
    calls = []

    def compute_stats(value=1.0):
        calls.append(value)
        return ReferenceStats(np.full(3, value), np.eye(3) * value, count=10)

    identity = {"manifest_sha256": "a" * 64, "extractor": "inception", "weights_sha256": "b" * 64, "resize": "x"}
    first, hit = cached_stats(tmp_path, identity, compute_stats)
    again, hit_again = cached_stats(tmp_path, identity, lambda: pytest.fail("recomputed"))
    assert (hit, hit_again) == (False, True) and np.array_equal(again.mu_D, first.mu_D)
    for key in identity:  # a different dataset, extractor, weights or resize never reads the old file
        changed = identity | {key: "c"}
        _, hit = cached_stats(tmp_path, changed, lambda: compute_stats(2.0))
        assert not hit
    assert len(calls) == 5


def test_registry_refuses_duplicates_and_unknown_names():
    assert {"inception", "domain"} <= set(EXTRACTORS)
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("inception", lambda weights, cache: None)
    from distgan.metrics.extractors import build_extractor

    with pytest.raises(ConfigError, match=r"--extractor must be one of \['clip', 'dinov2', 'domain', 'inception'\] "
                                          r"\(got 'swav'\)"):  # fmt: skip
        build_extractor("swav")


def _distgan(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "distgan.cli", *args], capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


def test_cli_metrics_on_images_npz_stats_and_shards(tmp_path):
    train, test = load_split("digits", "train"), load_split("digits", "test")
    np.savez(tmp_path / "real.npz", x=train.images_NHWC, y=train.labels_N)
    np.savez(tmp_path / "fake.npz", x=test.images_NHWC, y=test.labels_N)
    torch.manual_seed(0)
    save_classifier(tmp_path / "model.pt", small_cnn(1, 10), arch="small_cnn", in_channels=1, num_classes=10)
    common = ("--extractor", "domain", "--domain-model", str(tmp_path / "model.pt"), "--cache-dir", str(tmp_path))
    done = _distgan("metrics", "--real", str(tmp_path / "real.npz"), "--fake", str(tmp_path / "fake.npz"),
                    "--metrics", "is,fid,kid,pr", "--per-class", "--kid-subset-size", "300", "--kid-subsets", "3",
                    "--save-real-stats", str(tmp_path / "real_stats.npz"), *common)  # fmt: skip
    scores = json.loads(done.stdout)
    assert scores["fid"] > 0 and 1 <= scores["inception_score_mean"] <= 10 and 0 <= scores["precision"] <= 1
    assert scores["per_class"]["0"]["num_samples"] == int((test.labels_N == 0).sum())
    assert "fid" in done.stderr and "kid_mean" in done.stderr  # the table
    from_stats = json.loads(_distgan("metrics", "--real", str(tmp_path / "real_stats.npz"), "--fake",
                                     str(tmp_path / "fake.npz"), "--metrics", "fid", *common).stdout)  # fmt: skip
    assert from_stats["fid"] == pytest.approx(scores["fid"], rel=1e-9)
    bad = _distgan("metrics", "--real", str(tmp_path / "real_stats.npz"), "--fake", str(tmp_path / "fake.npz"),
                   "--metrics", "kid", *common, ok=False)  # fmt: skip
    assert "kid, pr and cmmd need the real images" in bad.stderr
    # Two statistics files give their FID, as `python -m pytorch_fid a.npz b.npz` does (its two steps, on the files).
    _distgan("metrics", "--real", str(tmp_path / "fake.npz"), "--fake", str(tmp_path / "fake.npz"), "--metrics",
             "fid", "--save-real-stats", str(tmp_path / "fake_stats.npz"), *common)  # fmt: skip
    both = json.loads(_distgan("metrics", "--real", str(tmp_path / "real_stats.npz"), "--fake",
                               str(tmp_path / "fake_stats.npz"), "--metrics", "fid", *common).stdout)  # fmt: skip
    placeholders = ("torchvision", "torchvision.transforms", "pytorch_fid.inception")
    read_npz = load_function("pytorch_fid", "fid_score.py", "compute_statistics_of_path", placeholders)
    frechet = load_function("pytorch_fid", "fid_score.py", "calculate_frechet_distance", placeholders)
    (mu1, sigma1), (mu2, sigma2) = (read_npz(str(tmp_path / name), None, 50, 2048, "cpu", 1)
                                    for name in ("real_stats.npz", "fake_stats.npz"))  # fmt: skip
    theirs = frechet(mu1, sigma1, mu2, sigma2)
    assert both["fid"] == pytest.approx(theirs, rel=1e-6) and both["fid"] == pytest.approx(scores["fid"], rel=1e-9)
    missing = _distgan("metrics", "--fake", str(tmp_path / "nope.npz"), *common, ok=False)
    assert f"--fake {tmp_path / 'nope.npz'}: no such file" in missing.stderr


def test_fake_inputs_are_checked_by_name(tmp_path, digits_shards):
    from distgan.metrics.inputs import resolve_fake, resolve_real

    kwargs = {"knob_value": 1.0, "truncation_factor": 2.0, "seed": 0, "sample_batch_size": 16, "shard_size": 2000}
    (tmp_path / "g.pt").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="pass --like"):
        resolve_fake(tmp_path / "g.pt", like=None, **kwargs)
    with pytest.raises(DataError, match="g.pt: not a generator checkpoint"):
        resolve_fake(tmp_path / "g.pt", like=digits_shards / "train", **kwargs)
    np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
    assert resolve_fake(tmp_path / "stats.npz", like=None, **kwargs).mu_D.shape == (3,)  # FID only: engine checks
    np.savez(tmp_path / "floats.npz", x=np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(DataError, match="floats.npz: 'x' must be uint8"):
        resolve_real(tmp_path / "floats.npz")


def test_save_real_stats_takes_one_pass_over_the_real_images(extractor, digits, tmp_path, monkeypatch):
    """The real statistics written are those the FID used: the real set is extracted once (it was twice)."""
    real, fake = digits
    calls = []
    features = extractor.model.features

    def counted(images):
        calls.append(len(images))
        return features(images)

    monkeypatch.setattr(extractor.model, "features", counted)
    opts = MetricOptions(save_real_stats=str(tmp_path / "real.npz"))
    scores = compute(real, fake, metrics=["fid"], extractor=extractor, options=opts)
    assert sum(calls) == real.source.num_images + fake.source.num_images  # each image through the network once
    monkeypatch.undo()
    saved = load_stats(tmp_path / "real.npz")
    assert scores["real_stats"] == str(tmp_path / "real.npz")  # pytorch-fid's layout: mu and sigma
    fake_stats = extract(extractor, fake.source).stats
    assert scores["fid"] == pytest.approx(
        frechet_distance(*fake_stats.mean_and_covariance(), saved.mu_D, saved.sigma_DD)
    )
