"""`distgan prepare|train-gan|sample|train-classifier|metrics|report`: one stage each, as shims over the
library calls the sweep uses. Every stage runs as one process or under `torchrun` (data-parallel)."""

import argparse
import json
import logging
import sys
from pathlib import Path

from distgan.config import ClassifierConfig, GanConfig, SampleConfig, add_flags, apply_flags
from distgan.data.download import sha256_of
from distgan.data.shards import read_manifest, read_shards, write_shards
from distgan.data.sources import SOURCES, ImageSplit, load_split
from distgan.errors import DistganError
from distgan.metrics.quality import extract, sample_quality
from distgan.models.truncation import sample_images
from distgan.train import distributed
from distgan.train.classifier import load_classifier
from distgan.train.gan import load_generator


def prepare(args) -> dict:
    """Real dataset → WebDataset shards: OUT/train and OUT/test, each with its manifest."""
    written = {}
    for split in ("train", "test"):
        images = load_split(args.source, split, path=args.path, image_size=args.image_size)
        provenance = {"kind": "real", "source": args.source, "split": split, "path": str(args.path)}
        manifest = write_shards(
            images, args.out / split, max_samples_per_shard=args.shard_max_samples, provenance=provenance
        )
        written[split] = {"num_samples": manifest["num_samples"], "class_counts": manifest["class_counts"]}
    return written


def train_gan_stage(args) -> dict:
    """Train the conditional GAN on real shards; write the generator checkpoint."""
    from distgan.experiments.workers import gan_worker

    cfg = apply_flags(GanConfig(), args, "gan.")
    gan_worker({"gan": cfg, "train_dir": str(args.data), "out_dir": str(args.out), "progress": True})
    return {"generator": str(args.out / "generator.pt"), "sha256": sha256_of(args.out / "generator.pt")}


def sample_stage(args) -> dict:
    """Generate one image per real training image (same class) at truncation τ, as shards."""
    cfg = apply_flags(SampleConfig(), args, "sample.")
    real = read_shards(args.like)
    images = sample_images(
        load_generator(args.generator),
        real.labels_N,
        truncation=args.truncation,
        factor=cfg.truncation_factor,
        seed=cfg.seed,
    )
    provenance = {
        "kind": "synthetic",
        "truncation": args.truncation,
        "truncation_factor": cfg.truncation_factor,
        "seed": cfg.seed,
        "generator_sha256": sha256_of(args.generator),
    }
    synthetic = ImageSplit(images_NHWC=images, labels_N=real.labels_N, class_names=real.class_names)
    manifest = write_shards(synthetic, args.out, max_samples_per_shard=2000, provenance=provenance)
    return {"out": str(args.out), "num_samples": manifest["num_samples"]}


def train_classifier_stage(args) -> dict:
    """Train a classifier on shards and test it on real test shards; writes scores.json (+ model.pt)."""
    from distgan.experiments.workers import classifier_worker, read_scores

    cfg = apply_flags(ClassifierConfig(), args, "classifier.")
    job = {"classifier": cfg, "train_dir": str(args.train), "test_dir": str(args.test), "out_dir": str(args.out)}
    classifier_worker(job | {"save_model": True})
    scores = read_scores(args.out)
    return {key: scores[key] for key in ("top1_error", "top5_error", "num_test_samples")}


def metrics_stage(args) -> dict:
    """IS of the fake shards and their FID against the real shards, through a trained classifier."""
    extractor = load_classifier(args.extractor)
    real_stats, _ = extract(extractor, read_shards(args.real).images_NHWC)
    return sample_quality(
        extractor, read_shards(args.fake).images_NHWC, real_stats.mean_and_covariance(), is_splits=args.is_splits
    )


def report_stage(args) -> dict:
    from distgan.analysis.report import build_report

    return {"report": str(build_report(args.sweep_dir))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distgan", description=__doc__)
    stages = parser.add_subparsers(dest="stage", required=True)

    p = stages.add_parser("prepare", help=prepare.__doc__)
    p.add_argument("source", choices=sorted(SOURCES))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--path", type=Path, help="dataset location (not for the embedded digits)")
    p.add_argument("--image-size", type=int, help="resize to this square size (default: native)")
    p.add_argument("--shard-max-samples", type=int, default=2000)
    p.set_defaults(run=prepare)

    p = stages.add_parser("train-gan", help=train_gan_stage.__doc__)
    p.add_argument("--data", type=Path, required=True, help="real training shards")
    p.add_argument("--out", type=Path, required=True, help="directory for generator.pt")
    add_flags(p, GanConfig, "gan.")
    p.set_defaults(run=train_gan_stage)

    p = stages.add_parser("sample", help=sample_stage.__doc__)
    p.add_argument("--generator", type=Path, required=True)
    p.add_argument("--like", type=Path, required=True, help="real training shards whose labels to follow")
    p.add_argument("--truncation", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    add_flags(p, SampleConfig, "sample.")
    p.set_defaults(run=sample_stage)

    p = stages.add_parser("train-classifier", help=train_classifier_stage.__doc__)
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    add_flags(p, ClassifierConfig, "classifier.")
    p.set_defaults(run=train_classifier_stage)

    p = stages.add_parser("metrics", help=metrics_stage.__doc__)
    p.add_argument("--real", type=Path, required=True, help="real shards (reference statistics)")
    p.add_argument("--fake", type=Path, required=True, help="generated shards")
    p.add_argument("--extractor", type=Path, required=True, help="classifier model.pt from train-classifier")
    p.add_argument("--is-splits", type=int, default=10)
    p.set_defaults(run=metrics_stage)

    p = stages.add_parser("report", help="rebuild report.md/csv and figures from a sweep's result.json files")
    p.add_argument("sweep_dir", type=Path)
    p.set_defaults(run=report_stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = build_parser().parse_args(argv)
    try:
        for path_arg in ("data", "like", "train", "test", "real", "fake"):
            if getattr(args, path_arg, None) is not None:
                read_manifest(getattr(args, path_arg))  # a wrong shard directory fails here, by name
        distributed.init_from_env()
        out = args.run(args)
    except DistganError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if distributed.rank() == 0:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
