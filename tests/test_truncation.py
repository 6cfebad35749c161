"""The truncation sampler: bounded, distributed as the truncated normal, deterministic in its seed."""

import numpy as np
import pytest
import torch
from scipy import stats

from distgan.models.gan import ConditionalGenerator
from distgan.models.truncation import sample_images, truncated_latents


@pytest.mark.parametrize("truncation", [0.2, 0.42, 0.5, 1.0, 2.0])
def test_entries_never_leave_the_range(truncation):
    factor = 2.0
    z = truncated_latents(50_000, 8, truncation=truncation, factor=factor, generator=torch.Generator().manual_seed(1))
    bound = factor * truncation
    assert z.abs().max().item() <= bound
    assert z.abs().max().item() > 0.95 * bound  # and it does reach towards the bound


@pytest.mark.parametrize("truncation", [0.2, 0.5, 1.0, 2.0])
def test_matches_the_truncated_normal_ks(truncation):
    bound = 2.0 * truncation
    z = truncated_latents(20_000, 1, truncation=truncation, factor=2.0, generator=torch.Generator().manual_seed(7))
    sample = z.double().numpy().ravel()
    assert stats.kstest(sample, stats.truncnorm(-bound, bound).cdf).pvalue > 0.01
    if truncation <= 1.0:  # where truncation removes real mass, the test has power: a 20 % narrower bound fails
        assert stats.kstest(sample, stats.truncnorm(-0.8 * bound, 0.8 * bound).cdf).pvalue < 1e-6


def test_bad_truncation_is_refused():
    with pytest.raises(ValueError, match="must be > 0"):
        truncated_latents(4, 2, truncation=0.0, factor=2.0, generator=torch.Generator())


def test_sample_images_one_per_label_and_seeded():
    generator = ConditionalGenerator(latent_dim=16, num_classes=3, image_size=8, channels=1, base_width=8)
    labels = np.array([0, 1, 2, 2, 1], dtype=np.int64)
    first = sample_images(generator, labels, truncation=0.5, factor=2.0, seed=3, batch_size=2)
    again = sample_images(generator, labels, truncation=0.5, factor=2.0, seed=3)
    other = sample_images(generator, labels, truncation=0.5, factor=2.0, seed=4)
    assert first.shape == (5, 8, 8, 1) and first.dtype == np.uint8
    assert np.array_equal(first, again)  # batch size does not change the images
    assert not np.array_equal(first, other)
