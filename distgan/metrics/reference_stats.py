"""Reference statistics on disk: pytorch-fid's `.npz` (`mu`, `sigma`) and our own, and a cache of them.

Our format adds the count, √Σ and the identity of what produced them. Cached files are named by the sha256 of that
identity: the dataset manifest's digest (it lists every shard's sha256), the extractor's name, its weights' sha256
and the resize; a file is used only if the identity stored inside equals the one asked for, so a cache entry is
never stale, and a valid one is never recomputed (the key holds everything that changes them). Writes are atomic
(runtime/atomic.py).

FID against these statistics (`ReferenceStats.fid_of`) needs √Σ, one `eigh` of Σ (fid.py's `RealFactor`): it
is computed on first use and kept on the object, so a sweep scoring many generated sets pays it once. Our files
store it (`sqrt_sigma`), so a reloaded cache file pays it never; it is √Σ of the `sigma` stored beside it (checked
on load with one probe vector), so the FID is the same as with it recomputed. Files without it (pytorch-fid's,
older distgan ones) load as before and compute it on first use.

No per-class statistics: K classes' Σ cost K·D²·8 bytes (33.5 GB at 1,000 classes and D = 2048). Per-class scores
come from each class's kept features (metrics/per_class.py; a sweep keeps them in `features.npy`, read class by
class). Older distgan files that hold `class_mu`/`class_sigma` still give their overall FID; those arrays are never
read (an `.npz` member is read only when indexed).
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from distgan.errors import DataError
from distgan.metrics.feature_stats import FeatureStats
from distgan.metrics.fid import RealFactor, factor_reference, frechet_distance_to
from distgan.runtime.atomic import atomic_path

FORMAT = "distgan-stats-v1"


@dataclass
class ReferenceStats:
    """μ and Σ of a feature set. Not changed after creation: √Σ is cached."""

    mu_D: np.ndarray
    sigma_DD: np.ndarray
    count: int | None = None  # None in pytorch-fid files
    identity: dict | None = None
    sqrt_sigma_DD: np.ndarray | None = field(default=None, repr=False)  # √Σ when known (our files store it)

    @classmethod
    def from_stats(cls, stats: FeatureStats, identity: dict | None = None) -> "ReferenceStats":
        mu, sigma = stats.mean_and_covariance()
        return cls(mu, sigma, stats.count, identity)

    @cached_property
    def real_factor(self) -> RealFactor:
        """The real side of FID: √Σ by one `eigh` on first use (none when loaded with it), then kept."""
        factor = factor_reference(self.mu_D, self.sigma_DD, sqrt_sigma=self.sqrt_sigma_DD)
        self.sqrt_sigma_DD = factor.sqrt_sigma_DD
        return factor

    def fid_of(self, mu_fake: np.ndarray, sigma_fake: np.ndarray) -> float:
        """FID of a generated set (its features' mean and covariance) against these statistics: the call for
        scoring sets against real statistics. After the first call each set costs one product and one `eigvalsh`
        (fid.frechet_distance_to); the value equals `frechet_distance(mu_D, sigma_DD, mu_fake, sigma_fake)`."""
        return frechet_distance_to(self.real_factor, mu_fake, sigma_fake)


def _atomic_savez(path: Path, **arrays) -> None:
    with atomic_path(path, suffix=".npz") as tmp:  # (.npz: np.savez appends it to any other name)
        np.savez(tmp, **arrays)


def save_pytorch_fid_npz(path: Path, ref: ReferenceStats) -> None:
    """pytorch-fid's layout: exactly `mu` and `sigma` (what `fid_score.py` reads from a .npz path)."""
    _atomic_savez(Path(path), mu=ref.mu_D, sigma=ref.sigma_DD)


def save_stats(path: Path, ref: ReferenceStats) -> None:
    """Our layout: pytorch-fid's two keys plus count, √Σ and the identity (readable by both).
    √Σ is computed now if not yet known: the one `eigh` that every later load of the file then skips."""
    arrays = {"mu": ref.mu_D, "sigma": ref.sigma_DD, "format": np.array(FORMAT)}
    arrays["sqrt_sigma"] = ref.real_factor.sqrt_sigma_DD
    arrays["count"] = np.array(-1 if ref.count is None else ref.count)
    arrays["identity"] = np.array(json.dumps(ref.identity or {}, sort_keys=True))
    _atomic_savez(Path(path), **arrays)


def load_stats(path: Path) -> ReferenceStats:
    """Either layout (and older distgan files, whose per-class arrays are left unread); DataError naming the file
    and the missing key otherwise."""
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
        identity = json.loads(str(data["identity"]))
        root = _checked_root(path, data["sqrt_sigma"], sigma) if "sqrt_sigma" in data else None  # older files: none
        return ReferenceStats(mu, sigma, None if count < 0 else count, identity, root)


def _checked_root(path: Path, root: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The stored √Σ, refused unless it squares to the stored Σ (a file whose sigma was changed by other code would
    otherwise give a wrong FID silently). One fixed random probe, O(d²): A(Av) = Σv to rounding."""
    root = root.astype(np.float64)
    if root.shape != sigma.shape:
        raise DataError(f"{path}: sqrt_sigma {root.shape} does not match sigma {sigma.shape}")
    probe = np.random.default_rng(0).standard_normal(sigma.shape[0])
    residual = np.linalg.norm(root @ (root @ probe) - sigma @ probe)
    if not residual <= 1e-8 * np.linalg.norm(sigma) * np.linalg.norm(probe):
        raise DataError(f"{path}: sqrt_sigma is not the square root of sigma (stale or edited file)")
    return root


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


def cached_stats(cache_dir: Path, identity: dict, compute: Callable[[], ReferenceStats], *,
                 write: bool = True) -> tuple[ReferenceStats, bool]:  # fmt: skip
    """The statistics for `identity` from `cache_dir` when a valid file is there, else `compute()` and store them.
    Returns (statistics, hit). `write=False` on ranks other than 0."""
    path = Path(cache_dir) / f"stats-{cache_key(identity)[:24]}.npz"
    if path.is_file():
        try:
            cached = load_stats(path)
        except DataError:
            cached = None  # unreadable: recompute and replace
        if cached is not None and cached.identity == identity:
            return cached, True
    ref = compute()
    ref.identity = identity
    if write:
        save_stats(path, ref)
    return ref, False
