"""The result schema, one place for the writers (experiments/) and the readers (analysis/): file names, the
experiments and training sets, and the keys of a trial's `result.json`. It imports nothing of distgan."""

RESULT_NAME = "result.json"  # one per trial directory: trials/<trial>/result.json
SAMPLES_NAME = "samples.png"  # a trial's sample grid, one row per class
LOSSES_NAME = "losses.csv"  # a GAN job's D and G losses per iteration, beside its generator.pt (docs/gans.md)
EXPERIMENTS = ("replacement", "augmentation", "gan", "gan-test")  # also the order of the report's sections
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
OPTIONAL_KEYS = (  # gan_train_accuracy is not among them: a result without it gets it derived (`gan_train_accuracy`)
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


KNOB_SYMBOLS = {"truncation": "τ", "guidance": "w"}  # how tables name the generator's knob; others by their name
KNOB_HEADERS = {"truncation": "Truncation τ", "guidance": "Guidance scale w"}


def knob_label(knob: str | None) -> str:
    """A knob as figures and sentences name it: τ (truncation), w (guidance scale), or its own name."""
    return KNOB_SYMBOLS.get(knob, knob or "knob")


def knob_header(knob: str | None) -> str:
    """A knob as a table's column names it: "Truncation τ", "Guidance scale w", or its own name."""
    return KNOB_HEADERS.get(knob, knob or "Knob")


def labelled(metric: str, space: str) -> str:
    """A sample metric's name with its feature space, as every table, column and Tune metric shows it:
    'fid[inception]'."""
    return f"{metric}[{space}]"


def gan_train_accuracy(training_set: str, top1_error: float | None) -> float | None:
    """GAN-train (Shmelkov et al. 2018): the accuracy on real test data of a classifier trained on generated data
    only; None for any other training set."""
    return 1 - top1_error if training_set == "synthetic" and top1_error is not None else None
