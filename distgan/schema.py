"""The result schema, one place for the writers (experiments/) and the readers (analysis/): the experiments and
training sets, the keys of a trial's `result.json`, and the generator's knobs (file names: layout.py). It imports
only `distgan.errors`."""

from dataclasses import dataclass

from distgan.errors import ConfigError

EXPERIMENTS = ("replacement", "augmentation", "gan", "gan-test", "compare")  # also the order of the report's sections
TRAINING_SETS = ("real", "synthetic", "real+synthetic")  # what a trial's classifier was trained on

# Every result names its sweep, trial, training set, classes and config; the rest may be missing or null when
# the trial did not measure it (a GAN trial stopped early, a real row without a generator).
REQUIRED_KEYS = ("sweep", "space", "trial", "training_set", "class_names", "config")
# result["gan"]: the report's GAN columns
GAN_FIELDS = ("arch", "loss", "lr_d", "lr_g", "batch_size", "iterations", "d_steps_schedule", "seed")
SCORES = (  # Tune reports them beside the labelled sample metrics; the report tabulates and correlates them
    "top1_error",
    "top5_error",
    "gan_test_accuracy",
    "gan_train_accuracy",
)
# The sample metrics of result["quality"][feature space]; flattened by the readers as labelled(metric, space).
QUALITY_SCORES = ("inception_score_mean", "inception_score_std", "fid", "kid_mean", "kid_std", "cmmd")
QUALITY_LABELS = {"inception_score_mean": "IS", "fid": "FID", "kid_mean": "KID", "cmmd": "CMMD"}
# Memorisation of the real training split (metrics/memorisation.py), also in result["quality"][feature space].
MEMORISATION_LABELS = {"copy_rate": "Copy rate", "authpct": "AuthPct", "ct": "C_T"}
OPTIONAL_KEYS = (  # gan_train_accuracy is not among them: a result without it gets it derived (`gan_train_accuracy`)
    "generator_name",  # the compare space's name of the generator (the readers name any other by its kind)
    "knob",
    "knob_value",
    "synthetic_fraction",
    "sample",
    "generator",
    "sampling",
    "top1_error",
    "top5_error",
    "per_class_accuracy",
    "quality",
    "gan_test_accuracy",
    "gan",
    "gan_iterations_done",
    "stopped_early",
    "num_test_samples",
    "workers",
    "feature_spaces",
    "real_row_splits",
)
CSV_COLUMNS = (  # report.csv: one row per trial, then labelled(metric, space) for every space of the sweep
    "experiment",
    "trial",
    "generator",  # its name in a compare sweep, else its kind; "real" for the real row
    "training_set",
    "knob",
    "knob_value",
    "synthetic_fraction",
    "top5_error",
    "top1_error",
    "gan_test_accuracy",
    "gan_train_accuracy",
    *(f"gan_{name}" for name in GAN_FIELDS),
    "gan_iterations_done",
    "stopped_early",
)


# What the gan space's ASHA can rank trials by (result keys of SCORES and QUALITY_SCORES), and in which direction.
SCHEDULER_METRICS = {
    "fid": "min",
    "inception_score_mean": "max",
    "gan_test_accuracy": "max",
    "gan_train_accuracy": "max",
}


@dataclass(frozen=True, kw_only=True)
class Knob:
    """A generator's sampling knob (its quality/diversity trade-off): how tables, trials and flags name it, the
    values a sweep samples at when --knob-values is unset, and the values it accepts."""

    name: str  # the generator's `knob` attribute
    symbol: str  # figures and sentences: τ, w
    header: str  # Table 1's column
    trial_prefix: str  # trial and set names: tau0.5, guidance4
    defaults: tuple[float, ...]
    lower_bound: float
    inclusive: bool  # whether lower_bound itself is allowed
    unit: str  # what a value is, in words (errors): "truncations", "guidance scales"

    def check(self, values: tuple[float, ...]) -> None:
        """A ConfigError naming --knob-values unless every value is within the knob's bound."""
        for value in values:
            if not (value >= self.lower_bound if self.inclusive else value > self.lower_bound):
                rule = f"{'≥' if self.inclusive else '>'} {self.lower_bound:g}"
                raise ConfigError(f"--knob-values must be {self.unit} {rule} (got {value:g})")


KNOBS = {
    knob.name: knob
    for knob in (
        # Ravuri & Vinyals (2019), Table 1; τ > 0: the latents' truncation bound (models/truncation.py).
        Knob(
            name="truncation",
            symbol="τ",
            header="Truncation τ",
            trial_prefix="tau",
            defaults=(0.2, 0.42, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0),
            lower_bound=0.0,
            inclusive=False,
            unit="truncations",
        ),
        # Peebles & Xie (2023) report DiT-XL/2 at w = 1.5 (best FID) and 4.0 (its samples): a grid around both;
        # w ≥ 1: the pipeline skips guidance below 1 (generators/diffusers_dit.py).
        Knob(
            name="guidance",
            symbol="w",
            header="Guidance scale w",
            trial_prefix="guidance",
            defaults=(1.0, 1.5, 2.0, 3.0, 4.0),
            lower_bound=1.0,
            inclusive=True,
            unit="guidance scales",
        ),
    )
}


def knob_label(knob: str | None) -> str:
    """A knob as figures and sentences name it: τ (truncation), w (guidance scale), or its own name."""
    return KNOBS[knob].symbol if knob in KNOBS else knob or "knob"


def knob_header(knob: str | None) -> str:
    """A knob as a table's column names it: "Truncation τ", "Guidance scale w", or its own name."""
    return KNOBS[knob].header if knob in KNOBS else knob or "Knob"


def knob_prefix(knob: str | None) -> str:
    """A knob as trial and set names start: tau (tau0.5), guidance (guidance4), or its own name."""
    return KNOBS[knob].trial_prefix if knob in KNOBS else knob or "knob"


def check_knob_values(knob: str | None, values: tuple[float, ...]) -> None:
    """A ConfigError naming --knob-values when a value is outside a known knob's bound (others take any value)."""
    if knob in KNOBS:
        KNOBS[knob].check(values)


def labelled(metric: str, space: str) -> str:
    """A sample metric's name with its feature space, as every table, column and Tune metric shows it:
    'fid[inception]'."""
    return f"{metric}[{space}]"


def gan_train_accuracy(training_set: str, top1_error: float | None) -> float | None:
    """GAN-train (Shmelkov et al. 2018): the accuracy on real test data of a classifier trained on generated data
    only; None for any other training set."""
    return 1 - top1_error if training_set == "synthetic" and top1_error is not None else None


def flat_quality(quality: dict | None) -> dict:
    """result["quality"] ({space: {metric: value}}) flattened as every table, column and Tune metric names its
    numbers: {labelled(metric, space): value} for each of QUALITY_SCORES and MEMORISATION_LABELS (None where a space
    did not measure it)."""
    return {labelled(metric, space): scores.get(metric) for space, scores in (quality or {}).items()
            for metric in (*QUALITY_SCORES, *MEMORISATION_LABELS)}  # fmt: skip
