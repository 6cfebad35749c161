"""Reference statistics on disk: pytorch-fid's `.npz` (`mu`, `sigma`) and our own, and a cache of them.

Our format adds the count, the raw float64 sums (so statistics can be merged), optional per-class μ/Σ and the
identity of what produced them. Cached files are named by the sha256 of that identity: the dataset manifest's
digest (it lists every shard's sha256), the extractor's name, its weights' sha256 and the resize; a file is used
only if the identity stored inside equals the one asked for, so a cache entry is never stale, and a valid one is
never recomputed (STYLE §10). Writes are atomic (temp name + os.replace).
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distgan.errors import DataError
from distgan.metrics.feature_stats import FeatureStats

FORMAT = "distgan-stats-v1"


@dataclass
class ReferenceStats:
    """μ and Σ of a feature set, with per-class μ/Σ when known."""

    mu_D: np.ndarray
    sigma_DD: np.ndarray
    count: int | None = None  # None in pytorch-fid files
    class_stats: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
    identity: dict | None = None

    @classmethod
    def from_stats(cls, stats: FeatureStats, class_stats: dict[int, FeatureStats] | None = None,
                   identity: dict | None = None) -> "ReferenceStats":  # fmt: skip
        mu, sigma = stats.mean_and_covariance()
        per_class = None
        if class_stats is not None:
            per_class = {label: s.mean_and_covariance() for label, s in class_stats.items() if s.count >= 2}
        return cls(mu, sigma, stats.count, per_class, identity)


def _atomic_savez(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_pytorch_fid_npz(path: Path, ref: ReferenceStats) -> None:
    """pytorch-fid's layout: exactly `mu` and `sigma` (what `fid_score.py` reads from a .npz path)."""
    _atomic_savez(Path(path), mu=ref.mu_D, sigma=ref.sigma_DD)


def save_stats(path: Path, ref: ReferenceStats) -> None:
    """Our layout: pytorch-fid's two keys plus count, per-class μ/Σ and the identity (readable by both)."""
    arrays = {"mu": ref.mu_D, "sigma": ref.sigma_DD, "format": np.array(FORMAT)}
    arrays["count"] = np.array(-1 if ref.count is None else ref.count)
    arrays["identity"] = np.array(json.dumps(ref.identity or {}, sort_keys=True))
    if ref.class_stats:
        labels = sorted(ref.class_stats)
        arrays["class_labels"] = np.array(labels)
        arrays["class_mu"] = np.stack([ref.class_stats[c][0] for c in labels])
        arrays["class_sigma"] = np.stack([ref.class_stats[c][1] for c in labels])
    _atomic_savez(Path(path), **arrays)


def load_stats(path: Path) -> ReferenceStats:
    """Either layout; DataError naming the file and the missing key otherwise."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npz ({err})") from None
    with data:
        for key in ("mu", "sigma"):
            if key not in data:
                raise DataError(f"{path}: missing key {key!r} (expected pytorch-fid's mu/sigma layout)")
        mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise DataError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not describe one Gaussian")
        if "format" not in data:
            return ReferenceStats(mu, sigma)
        count = int(data["count"])
        class_stats = None
        if "class_labels" in data:
            class_stats = {int(c): (data["class_mu"][i], data["class_sigma"][i])
                           for i, c in enumerate(data["class_labels"])}  # fmt: skip
        identity = json.loads(str(data["identity"]))
        return ReferenceStats(mu, sigma, None if count < 0 else count, class_stats, identity)


def is_stats_file(path: Path) -> bool:
    """True for an .npz holding statistics (mu/sigma) rather than images."""
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as data:
        return "mu" in data and "sigma" in data


def cache_key(identity: dict) -> str:
    """sha256 of the identity, canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cached_stats(cache_dir: Path, identity: dict, compute: Callable[[], ReferenceStats], *, need_per_class: bool,
                 write: bool = True) -> tuple[ReferenceStats, bool]:  # fmt: skip
    """The statistics for `identity` from `cache_dir` when a valid file is there, else `compute()` and store them.
    Returns (statistics, hit). `write=False` on ranks other than 0."""
    path = Path(cache_dir) / f"stats-{cache_key(identity)[:24]}.npz"
    if path.is_file():
        try:
            cached = load_stats(path)
        except DataError:
            cached = None  # unreadable: recompute and replace
        if cached is not None and cached.identity == identity and (cached.class_stats or not need_per_class):
            return cached, True
    ref = compute()
    ref.identity = identity
    if write:
        save_stats(path, ref)
    return ref, False
