"""`distgan metrics --fake generator.pt` scores the very set `distgan sample` writes: the generator is opened through
distgan.generators and sampled with the sweep's labels and seeding, on the fly."""

import numpy as np
import pytest
import torch

from distgan import cli
from distgan.config import GanConfig
from distgan.data.shards import read_shards, write_shards
from distgan.data.sources import ImageSplit
from distgan.errors import ConfigError
from distgan.metrics.inputs import resolve_fake
from distgan.models.gan import ConditionalGenerator
from distgan.train.gan import save_generator

COUNTS, SEED, KNOB_VALUE, BATCH, SHARD = (5, 7, 4), 3, 0.5, 4, 6  # 16 images: shards of 6, 6, 4; batches of 4


@pytest.fixture(scope="module")
def generator_and_like(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake")
    torch.manual_seed(0)
    net = ConditionalGenerator(latent_dim=16, num_classes=3, image_size=8, channels=1, base_width=8)
    save_generator(root / "generator.pt", net, GanConfig(latent_dim=16, g_width=8), image_size=8, channels=1)
    labels = np.repeat(np.arange(3, dtype=np.int64), COUNTS)
    real = ImageSplit(np.zeros((len(labels), 8, 8, 1), np.uint8), labels, ("a", "b", "c"))
    write_shards(real, root / "like", max_samples_per_shard=100, provenance={"kind": "test"})
    return root / "generator.pt", root / "like"


def test_a_generator_is_scored_on_the_set_distgan_sample_writes(generator_and_like, tmp_path):
    weights, like = generator_and_like
    args = cli.build_parser().parse_args([
        "sample", "--like", str(like), "--out", str(tmp_path / "set"), "--knob-value", str(KNOB_VALUE),
        "--shard-size", str(SHARD), "--generator.kind", "distgan", "--generator.weights", str(weights),
        "--sample.seed", str(SEED), "--sample.batch-size", str(BATCH),
    ])  # fmt: skip
    args.run(args)
    written = read_shards(tmp_path / "set")
    fake = resolve_fake(weights, like=like, knob_value=KNOB_VALUE, truncation_factor=2.0, seed=SEED,
                        sample_batch_size=BATCH, shard_size=SHARD)  # fmt: skip
    assert np.array_equal(fake.source.labels_N, written.labels_N) and fake.class_names == ["a", "b", "c"]
    assert np.array_equal(fake.source.chunk(0, 16), written.images_NHWC)
    # As extraction reads it: chunks that cross the shards, in any order.
    chunks = {start: fake.source.chunk(start, min(start + 5, 16)) for start in (15, 10, 5, 0)}
    assert np.array_equal(np.concatenate([chunks[start] for start in sorted(chunks)]), written.images_NHWC)
    other = resolve_fake(weights, like=like, knob_value=1.0, truncation_factor=2.0, seed=SEED,
                         sample_batch_size=BATCH, shard_size=SHARD)  # fmt: skip
    assert not np.array_equal(other.source.chunk(0, 16), written.images_NHWC)


def test_a_generator_for_other_classes_is_refused_by_name(generator_and_like, tmp_path):
    weights, _ = generator_and_like
    labels = np.arange(4, dtype=np.int64)
    write_shards(ImageSplit(np.zeros((4, 8, 8, 1), np.uint8), labels, ("a", "b", "c", "d")), tmp_path / "like4",
                 max_samples_per_shard=100, provenance={"kind": "test"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"^--generator.weights: .*generator.pt makes 3 classes, the dataset has 4"):
        resolve_fake(weights, like=tmp_path / "like4", knob_value=1.0, truncation_factor=2.0, seed=0,
                     sample_batch_size=BATCH, shard_size=SHARD)  # fmt: skip
