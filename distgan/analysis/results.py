"""The trials of a results directory: every `trials/*/result.json`, read, checked and brought to one schema.

Older replacement results predate the `experiment`, `synthetic_fraction`, `gan*`, `gan_train_accuracy` and
`quality` keys; they get the values those keys would have held (see `normalise`: their flat IS/FID/KID were
measured in the domain space), so one report reads both. Every sample metric of `quality[space]` is also
flattened to `labelled(metric, space)` (`schema.flat_quality`), the key the tables and correlations read.
"""

import json
import math
from pathlib import Path

from distgan.errors import DataError
from distgan.layout import FAILURE_FILE, RESULT_FILE, SweepPaths
from distgan.schema import (
    EXPERIMENTS,
    OPTIONAL_KEYS,
    QUALITY_SCORES,
    REQUIRED_KEYS,
    TRAINING_SETS,
    flat_quality,
    gan_train_accuracy,
    knob_label,
)


def is_number(value) -> bool:
    """True for a finite int/float (not bool); None and NaN are 'not measured'."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def normalise(result: dict, path: Path) -> dict:
    """A result with every key of the current schema; DataError naming `path` where one cannot be read."""
    if not isinstance(result, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(result).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
    out = dict(result)
    out.setdefault("experiment", "replacement")  # the only experiment before the key existed
    if out["experiment"] not in EXPERIMENTS:
        raise DataError(f"{path}: experiment must be one of {list(EXPERIMENTS)} (got {out['experiment']!r})")
    if out["training_set"] not in TRAINING_SETS:
        raise DataError(f"{path}: training_set must be one of {list(TRAINING_SETS)} (got {out['training_set']!r})")
    if "knob_value" not in out:  # before generator kinds: every set was a distgan GAN's, at a truncation τ
        out["knob_value"] = out.pop("truncation", None)
        out["knob"] = None if out["training_set"] == "real" else "truncation"
    if "quality" not in out:  # before feature spaces: flat numbers, all of the domain classifier
        out["quality"] = {"domain": {key: out.pop(key) for key in QUALITY_SCORES if key in out}}
    if not isinstance(out["quality"], dict):
        raise DataError(f"{path}: quality must be an object of feature space -> scores")
    out |= flat_quality(out["quality"])
    for key in OPTIONAL_KEYS:
        out.setdefault(key, None)
    if out["generator_name"] is None:  # outside the compare space: the one generator, by its kind
        generator = out["generator"] if isinstance(out["generator"], dict) else {"kind": "distgan"}  # older: a GAN's
        out["generator_name"] = "real" if out["training_set"] == "real" else generator["kind"]
    if "gan_train_accuracy" not in out:
        top1_error = out["top1_error"] if is_number(out["top1_error"]) else None
        out["gan_train_accuracy"] = gan_train_accuracy(out["training_set"], top1_error)
    return out


def read_result(path: Path) -> dict:
    """One trial's result.json, normalised; DataError naming the file when it is unreadable or corrupt."""
    try:
        text = path.read_text()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    return normalise(raw, path)


def _order(result: dict) -> tuple:
    # Within an experiment: real rows first, then by knob value, then by fraction, then by trial name (a stable tiebreak
    # so that the report does not depend on directory listing order).
    return (
        EXPERIMENTS.index(result["experiment"]),
        result["training_set"] != "real",
        result["knob_value"] if is_number(result["knob_value"]) else -1.0,
        result["synthetic_fraction"] if is_number(result["synthetic_fraction"]) else -1.0,
        result["trial"],
    )


def trials_without_result(sweep_dir: Path) -> list[str]:
    """Trial directories that hold no result.json: failed, stopped before writing, or still running."""
    trials = SweepPaths.of(sweep_dir).trials_dir
    if not trials.is_dir():
        return []
    return sorted(d.name for d in trials.iterdir() if d.is_dir() and not (d / RESULT_FILE).exists())


def trial_failures(sweep_dir: Path) -> dict[str, dict]:
    """{trial: its failure.json} of the trials without a result that ended on a user's error: the one-line error
    and the point of the space it was to measure."""
    trials = SweepPaths.of(sweep_dir).trials_dir
    return {name: json.loads((trials / name / FAILURE_FILE).read_text()) for name in trials_without_result(sweep_dir)
            if (trials / name / FAILURE_FILE).is_file()}  # fmt: skip


def load_results(sweep_dir: Path) -> list[dict]:
    """Every trials/*/result.json of a results directory, normalised and ordered by experiment, then real row
    first, τ, fraction. A directory with none is a DataError; a trial directory without one is not (a failed
    trial: the sweep still reports the rest, and lists it — see `trials_without_result`)."""
    paths = sorted(SweepPaths.of(sweep_dir).trials_dir.glob(f"*/{RESULT_FILE}"))
    if not paths:
        raise DataError(f"{sweep_dir}: no trials/*/{RESULT_FILE} to report on")
    return sorted((read_result(path) for path in paths), key=_order)


def of_experiment(results: list[dict], experiment: str) -> list[dict]:
    """The results of one experiment, in report order."""
    return [r for r in results if r["experiment"] == experiment]


def point_text(result: dict) -> str:
    """A generated set's knob value as a label, "τ = 0.5"; "generated" for a generator without knob."""
    if result["knob_value"] is None:
        return "generated"
    return f"{knob_label(result['knob'])} = {result['knob_value']:g}"


def knob_of(results: list[dict]) -> str | None:
    """The knob of the sweep's generated sets (τ, guidance, ...): of the first generated result, else None."""
    return next((r["knob"] for r in results if r["training_set"] != "real" and r["knob"]), None)


def feature_spaces(results: list[dict]) -> list[str]:
    """The feature spaces the results were scored in, in the order the sweep named them (the first leads)."""
    return list(dict.fromkeys(space for r in results for space in r["quality"]))
