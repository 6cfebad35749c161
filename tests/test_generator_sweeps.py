"""Pretrained-model kinds end to end through `--quick` replacement sweeps, as a user types them: BigGAN-deep 128
(pytorch-pretrained-biggan's architecture) and a DiT pipeline (diffusers), both at random weights (none can be fetched
here), on a small digits set whose classes are named by ImageNet synsets (as an ImageNet image-folder tree's are) or
mapped onto them with --generator.synsets. A random generator teaches nothing: these check the doors, the knob, the
fitting to the real images and what the results record, not accuracy. The sweeps run in this process on the
session's Ray instance, as typed in the checkout's copy."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import SweepRun, run_sweep_in_process
from model_builders import save_random_biggan, save_tiny_dit

from distgan.data.sources import load_split
from distgan.generators.imagenet_synsets import IMAGENET_SYNSETS

SYNSETS = IMAGENET_SYNSETS[:10]  # tench, goldfish, great white shark, ...
SMALL = ("--quick", "--include-real", "false", "--classifier.epochs", "1", "--metrics.extractor-epochs", "1",
         "--workers-per-trial", "1", "--cpus-per-worker", "1")  # fmt: skip


@pytest.fixture(scope="module")
def small_digits(checkout) -> Path:
    """20 digits per class in one .npz (split 80/20 per class by the npz source), classes named by synsets."""
    real = load_split("digits", "train", image_size=16)
    keep = np.concatenate([np.flatnonzero(real.labels_N == k)[:20] for k in range(10)])
    path = checkout / "small_digits.npz"
    np.savez(path, x=real.images_NHWC[keep], y=real.labels_N[keep], class_names=np.array(SYNSETS))
    return path


def sweep(checkout: Path, *args: str) -> SweepRun:
    """`python tune/sweep.py --space replacement SMALL ARGS` typed in the checkout, its results where it puts them."""
    return run_sweep_in_process(
        checkout, "--space", "replacement", *SMALL, *args, "--results-dir", str(checkout / "results")
    )


def test_biggan_deep_samples_at_truncations_in_its_own_convention(checkout, small_digits, ray_session):
    weights = save_random_biggan(checkout / "biggan-deep-128", channel_width=8)  # the real layout, a narrow width
    done = sweep(
        checkout,
        "--name",
        "biggan",
        "--data.source",
        "npz",
        "--data.path",
        "small_digits.npz",
        "--generator.kind",
        "biggan",
        "--generator.weights",
        "biggan-deep-128",
        "--knob-values",
        "0.4",
    )
    assert "| Training set | Truncation τ |" in done.table
    result = json.loads((checkout / "results" / "biggan" / "trials" / "tau0.4" / "result.json").read_text())
    identity = result["sampling"]["generator"]
    assert identity["kind"] == "biggan" and identity["truncation_convention"] == "scale"  # BigGAN's own
    assert identity["weights"] == str(weights) and result["num_train_samples"] == 160  # one per real training image
    manifest = next((checkout / "results" / "cache").glob("synthetic-tau0.4-*/manifest.json"))
    assert json.loads(manifest.read_text())["image_shape_HWC"] == [16, 16, 1]  # 128 px RGB fitted to the digits
    assert (
        "Truncation τ: latents from a normal truncated to [−2, 2], times τ"
        in (checkout / "results" / "biggan" / "report.md").read_text()
    )


def test_dit_samples_at_guidance_scales_with_classes_mapped_by_flag(checkout, small_digits, ray_session):
    """The digits' own class names ("0".."9", no class_names key) mapped onto ImageNet by --generator.synsets."""
    plain = checkout / "plain_digits.npz"
    with np.load(small_digits) as npz:
        np.savez(plain, x=npz["x"], y=npz["y"])
    save_tiny_dit(checkout / "dit-tiny")
    done = sweep(checkout, "--name", "dit", "--data.source", "npz", "--data.path", "plain_digits.npz",
                 "--generator.kind", "diffusers", "--generator.weights", "dit-tiny", "--generator.target", "steps=2",
                 "--generator.synsets", ",".join(SYNSETS), "--knob-values", "1,4")  # fmt: skip
    assert "| Training set | Guidance scale w |" in done.table
    results = {w: json.loads((checkout / "results" / "dit" / "trials" / f"guidance{w}" / "result.json").read_text())
               for w in (1, 4)}  # fmt: skip
    assert [results[w]["knob"] for w in (1, 4)] == ["guidance", "guidance"]
    assert results[4]["generator"]["synsets"] == list(SYNSETS) and results[4]["knob_value"] == 4.0
    # The guidance scale changes the images: the two sets' FIDs differ.
    assert results[1]["quality"]["domain"]["fid"] != results[4]["quality"]["domain"]["fid"]
