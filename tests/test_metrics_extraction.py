"""Extraction into streaming statistics: batch-size invariance, fused (torch.compile, channels-last) == eager,
2 gloo ranks == 1 process (statistics, per-class statistics, logits and kept features in image order)."""

import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from distgan.data.sources import load_split
from distgan.generators import LoadedGenerator
from distgan.generators.synthetic import SyntheticImages
from distgan.metrics.extraction import ImageSource, extract, make_step
from distgan.metrics.extractors import wrap_model
from distgan.metrics.per_class import class_rows
from distgan.models.classifiers import small_cnn


def _digits():
    split = load_split("digits", "train")
    return split.images_NHWC[:300], split.labels_N[:300]


def _extractor(seed: int = 0):
    torch.manual_seed(seed)
    model = small_cnn(1, 10)
    # Non-trivial BatchNorm statistics, as a trained extractor has.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return wrap_model("domain", model)


class _Noise:
    """A generator behind the contract: uniform noise images, drawn from the torch.Generator it is handed."""

    image_size, channels, knob = 8, 1, None

    def sample(self, labels, knob_value, generator):
        return torch.randint(0, 256, (len(labels), 8, 8, 1), generator=generator, dtype=torch.uint8)


def _generated_source(chunk_size: int) -> ImageSource:
    """Images generated on the fly, shard by shard as the sweep's sampler seeds them (no images written): any rank
    can make any chunk."""
    labels = np.arange(90) % 10
    images = SyntheticImages(LoadedGenerator(_Noise(), 10, {}), labels, None, seed=3, shard_size=chunk_size,
                             batch_size=chunk_size)  # fmt: skip
    return ImageSource(len(labels), labels, images)


def _assert_same(a, b, rtol=1e-6):
    mu_a, sigma_a = a.stats.mean_and_covariance()
    mu_b, sigma_b = b.stats.mean_and_covariance()
    assert a.stats.count == b.stats.count
    np.testing.assert_allclose(mu_a, mu_b, rtol=rtol, atol=rtol * np.abs(mu_b).max())
    np.testing.assert_allclose(sigma_a, sigma_b, rtol=rtol, atol=rtol * np.abs(sigma_b).max())


def test_statistics_do_not_depend_on_the_batch_size():
    images, labels = _digits()
    extractor = _extractor()
    small = extract(extractor, ImageSource.from_array(images, labels), batch_size=7, keep_features=True)
    large = extract(extractor, ImageSource.from_array(images, labels), batch_size=128, keep_features=True)
    _assert_same(small, large, rtol=1e-5)
    assert small.feats_ND.std(dim=0).mean() > 0.01  # features vary: the comparison is not vacuous
    feats = small.feats_ND.double().numpy()
    mu, sigma = small.stats.mean_and_covariance()
    np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-9)
    np.testing.assert_allclose(sigma, np.cov(feats, rowvar=False), rtol=1e-7, atol=1e-12)


def test_kept_features_are_capped_to_the_first_images():
    images, labels = _digits()
    result = extract(_extractor(), ImageSource.from_array(images, labels), batch_size=64, keep_features=True,
                     max_kept_features=100)  # fmt: skip
    whole = extract(_extractor(), ImageSource.from_array(images, labels), batch_size=64, keep_features=True)
    assert result.feats_ND.shape == (100, 128) and result.stats.count == 300
    torch.testing.assert_close(result.feats_ND, whole.feats_ND[:100])


def test_per_class_rows_equal_the_features_of_each_class_alone():
    """per_class keeps the features; a class's rows of them are what extracting that class alone gives."""
    images, labels = _digits()
    extractor = _extractor()
    result = extract(extractor, ImageSource.from_array(images, labels), batch_size=50, per_class=True)
    rows = class_rows(labels)
    for label in (0, 7):
        alone = extract(extractor, ImageSource.from_array(images[labels == label]), batch_size=50, keep_features=True)
        torch.testing.assert_close(result.feats_ND[torch.as_tensor(rows[label])], alone.feats_ND, rtol=1e-5, atol=1e-6)


def test_fused_compiled_path_equals_eager():
    """torch.compile (Inductor's C++/OpenMP code here, Triton on GPUs) with channels-last against eager NCHW."""
    images, labels = _digits()
    extractor = _extractor()
    eager = extract(extractor, ImageSource.from_array(images, labels), batch_size=64, keep_features=True)
    fused_step = make_step(extractor, torch.device("cpu"), fused=True)
    # batch 50 on CPU: network batches of 4 and a padded one of 2 (one compiled shape, padding dropped)
    fused = extract(extractor, ImageSource.from_array(images, labels), batch_size=50, keep_features=True,
                    fused=True, step=fused_step)  # fmt: skip
    _assert_same(fused, eager, rtol=1e-5)
    torch.testing.assert_close(fused.logits_NK, eager.logits_NK, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.feats_ND, eager.feats_ND, rtol=1e-4, atol=1e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        images, labels = _digits()
        result = extract(_extractor(), ImageSource.from_array(images, labels), batch_size=32, keep_features=True,
                         per_class=True, max_kept_features=250)  # fmt: skip
        generated = extract(_extractor(), _generated_source(16), batch_size=16)
        # Fewer images than world × batch: rank 1 extracts no chunk, and still takes part in the gathers.
        tiny = extract(_extractor(), ImageSource.from_array(images[:10], labels[:10]), batch_size=32,
                       keep_features=True)  # fmt: skip
        if rank == 0:
            payload = {"tiny_logits": tiny.logits_NK, "tiny_feats": tiny.feats_ND,
                       "generated_sum": generated.stats.sum_D, "count": result.stats.count,
                       "sum": result.stats.sum_D, "outer": result.stats.sum_outer_DD,
                       "logits": result.logits_NK, "feats": result.feats_ND}  # fmt: skip
            torch.save(payload, os.path.join(out_dir, "rank0.pt"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_give_the_single_process_result(tmp_path):
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    two = torch.load(tmp_path / "rank0.pt")
    images, labels = _digits()
    one = extract(_extractor(), ImageSource.from_array(images, labels), batch_size=32, keep_features=True,
                  per_class=True, max_kept_features=250)  # fmt: skip
    assert two["count"] == one.stats.count == 300
    torch.testing.assert_close(two["sum"], one.stats.sum_D, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(two["outer"], one.stats.sum_outer_DD, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(two["logits"], one.logits_NK)  # same images, same order
    torch.testing.assert_close(two["feats"], one.feats_ND)
    assert two["feats"].shape == (250, 128)
    tiny = extract(_extractor(), ImageSource.from_array(images[:10], labels[:10]), batch_size=32, keep_features=True)
    torch.testing.assert_close(two["tiny_logits"], tiny.logits_NK)
    torch.testing.assert_close(two["tiny_feats"], tiny.feats_ND)
    generated = extract(_extractor(), _generated_source(16), batch_size=16)
    assert generated.stats.count == 90
    torch.testing.assert_close(two["generated_sum"], generated.stats.sum_D, rtol=1e-9, atol=1e-9)
