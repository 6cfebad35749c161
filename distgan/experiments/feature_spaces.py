"""A sweep's feature spaces (`--metrics.extractors`): every generated set is scored in each of them (the scoring
job, `jobs/scoring.py`), each number under its space's name.

The real side of a space is extracted once per sweep by a reference job on the sweep's workers and cached beside
the other artifacts (statistics, the kept features and their labels: KID and CMMD compare samples, not statistics),
together with the real row's numbers in that space: IS of the real *test* split (the domain extractor was trained on
the training split, whose IS it would inflate) and FID/KID of the real test split against the real training split.
"""

import logging
from pathlib import Path

from distgan.config import SweepConfig, digest
from distgan.data.manifest import manifest_digest
from distgan.jobs.placement import sweep_jobs
from distgan.jobs.scoring import FeatureSpaces, ReferenceJob, reference_worker
from distgan.layout import SweepPaths
from distgan.runtime.atomic import build_cached_dir
from distgan.train.launch import run_data_parallel

log = logging.getLogger("distgan")


def feature_spaces(cfg: SweepConfig, domain_model: Path) -> FeatureSpaces:
    return FeatureSpaces(metrics=cfg.metrics, domain_model=domain_model,
                         weights_dir=SweepPaths(cfg.results_dir, cfg.name).weights_dir)  # fmt: skip


def prepare_references(cfg: SweepConfig, spaces: FeatureSpaces, real_train_dir: Path, real_test_dir: Path) -> dict:
    """{space: cache directory} of every space's real side and real row, each made once per (extractor identity,
    real data, metric settings) by a reference job where `placement.sweep_jobs` says."""
    references = {}
    for name in cfg.metrics.extractors:
        m = cfg.metrics
        key = digest(spaces.extractor(name).cache_identity(), manifest_digest(real_train_dir),
                     manifest_digest(real_test_dir), m.num_images, m.metrics, m.is_splits, m.kid_subsets,
                     m.kid_subset_size)  # fmt: skip
        out = SweepPaths(cfg.results_dir, cfg.name).reference(name, key)

        def build(tmp: Path, name=name, out=out) -> None:
            job = ReferenceJob(spaces=spaces, space=name, real_train_dir=real_train_dir, real_test_dir=real_test_dir,
                               out_dir=tmp)  # fmt: skip
            run_data_parallel(reference_worker, job, launch=sweep_jobs(cfg), name=f"reference-{out.name}")

        built = build_cached_dir(out, build)
        log.info("%s real side of the %s feature space: %s", "made" if built else "cache hit,", name, out)
        references[name] = out
    return references


def describe_spaces(cfg: SweepConfig, spaces: FeatureSpaces) -> dict:
    """What each space's numbers were measured with (result.json's `feature_spaces`)."""
    described = {}
    for name in cfg.metrics.extractors:
        extractor = spaces.extractor(name)
        text = (f"domain classifier ({cfg.classifier.arch}) trained on the real training split"
                if name == "domain" else f"{name} network")  # fmt: skip
        described[name] = {"description": text, "weights_sha256": extractor.weights_sha256,
                           "resize": extractor.resize, "class_logits": extractor.has_logits}  # fmt: skip
    return described
