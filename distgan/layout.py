"""Where things live on disk: every directory and file name a sweep, a job or a stage writes, caches or reads back.

The writers (`jobs/`, `experiments/`, `cli.py`) and the readers (`analysis/`, tests) name paths through this module
only. It imports nothing of distgan (the bottom layer).

    <results_dir>/cache/                        what sweeps share, keyed by the digest of what determines it
    <results_dir>/<sweep>/config.json           the sweep's resolved config
    <results_dir>/<sweep>/trials/<trial>/       result.json, samples.png, scores.json, losses.csv, tsne.csv, ...
    <results_dir>/<sweep>/ray/tune/             Ray Tune's experiment state (what --resume restores)
    <results_dir>/<sweep>/ray/train/            Ray Train's run directories (worker logs)
    <results_dir>/<sweep>/report.md ...         the report (analysis/report.py)
"""

from dataclasses import dataclass
from pathlib import Path

# A job's outputs, in the directory it was given.
GENERATOR_FILE = "generator.pt"  # a GAN job's generator (models/gan.py's format)
LOSSES_FILE = "losses.csv"  # a GAN job's D and G losses per iteration (docs/gans.md); copied into its trial
TRAINING_FILE = "training.json"  # a GAN job's step counts and sampled losses
MODEL_FILE = "model.pt"  # a classifier job's model, when asked (the domain feature extractor)
SCORES_FILE = "scores.json"  # a classifier job's test scores and training facts
QUALITY_FILE = "quality.json"  # a scoring job's numbers of one generated set in every feature space
STAGES_DIR = "stages"  # <stage>.json: where a job's ranks ran and for how long (result.json's "stages")
CHECKPOINTS_DIR = "checkpoints"  # a job's checkpoints, when the engine checkpoints
META_FILE = "meta.json"  # what made a cached GAN
# A trial's own files.
RESULT_FILE = "result.json"  # one per trial directory
FAILURE_FILE = "failure.json"  # a trial that ended on a user's error: its one line and its point (no result.json)
SAMPLES_FILE = "samples.png"  # a trial's sample grid, one row per class
TRIAL_KEY_FILE = ".trial-key"  # digest of what determines a trial's outputs; a stale directory is cleared
GAN_DIR = "gan"  # a gan-space trial's GAN job directory
TRIAL_SAMPLES_DIR = "samples"  # a gan-space trial's synthetic sets (one per rung)
# A sweep's own files.
CONFIG_FILE = "config.json"
LEADERBOARD_FILE = "leaderboard.csv"  # the compare space's generators, ranked (analysis/compare_report.py)
SWEEP_TOKEN_FILE = ".sweep-token"  # a nonce the driver writes: a trial's node checks it sees the same (shared storage)


def stage_file(out_dir: Path, stage: str) -> Path:
    """Where a job writes the record of one of its stages (sample, score, train, evaluate)."""
    return out_dir / STAGES_DIR / f"{stage}.json"


@dataclass(frozen=True)
class SweepPaths:
    """The directories of one sweep (`name`) under `results_dir` (absolute, as the config makes it)."""

    results_dir: Path
    name: str

    @classmethod
    def of(cls, out_dir: Path) -> "SweepPaths":
        """The paths of the sweep whose directory is `out_dir` (e.g. `distgan report DIR`)."""
        out_dir = Path(out_dir)
        return cls(out_dir.parent, out_dir.name)

    @property
    def out_dir(self) -> Path:
        """The sweep's trials, state and report."""
        return self.results_dir / self.name

    @property
    def config_file(self) -> Path:
        return self.out_dir / CONFIG_FILE

    @property
    def token_file(self) -> Path:
        return self.out_dir / SWEEP_TOKEN_FILE

    @property
    def trials_dir(self) -> Path:
        return self.out_dir / "trials"

    def trial_dir(self, trial: str) -> Path:
        return self.trials_dir / trial

    @property
    def tune_dir(self) -> Path:
        """Ray Tune's experiment directory (its state: what --resume restores)."""
        return self.out_dir / "ray" / "tune"

    @property
    def train_storage_dir(self) -> Path:
        """Ray Train's run directories of the sweep's data-parallel jobs."""
        return self.out_dir / "ray" / "train"

    @property
    def cache_dir(self) -> Path:
        """What every sweep under results_dir shares (shared storage on a cluster)."""
        return self.results_dir / "cache"

    @property
    def weights_dir(self) -> Path:
        """Downloaded or unpacked network weights (feature extractors)."""
        return self.cache_dir / "weights"

    def real_shards(self, source: str, split: str, key: str) -> Path:
        return self.cache_dir / f"real-{source}-{split}-{key}"

    def gan(self, key: str) -> Path:
        return self.cache_dir / f"gan-{key}"

    def extractor(self, key: str) -> Path:
        return self.cache_dir / f"extractor-{key}"

    def reference(self, space: str, key: str) -> Path:
        """The real side of a feature space (statistics, kept features, the real row's numbers)."""
        return self.cache_dir / f"real-{space}-{key}"

    def mixture(self, fraction: float, key: str) -> Path:
        return self.cache_dir / f"mixture-frac{fraction:g}-{key}"

    def synthetic(self, point: str, key: str) -> Path:
        return synthetic_set(self.cache_dir, point, key)


def set_quality(synthetic_dir: Path, key: str) -> Path:
    """A generated set's numbers (what its scoring job wrote), beside the set: shared by the trials that train on it."""
    return synthetic_dir.with_name(f"quality-{synthetic_dir.name}-{key}")


def synthetic_set(root: Path, point: str, key: str) -> Path:
    """A synthetic set under `root`: the sweep's cache, or a gan-space trial's own samples/ (one GAN per trial)."""
    return root / f"synthetic-{point}-{key}"
