"""Fréchet distance between two Gaussians (Heusel et al. 2017), by symmetric eigenvalue paths, in float64.

d² = ‖μ₁−μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂). Σ₁Σ₂ is similar to a symmetric PSD matrix M, so tr √(Σ₁Σ₂) =
Σ √λ(M) with `eigvalsh` replacing scipy's general `sqrtm` (which pytorch-fid calls, and whose `disp=` scipy 1.18
removed):
- "eigh" (default, the issue's path): A = √Σ₁ by `eigh`, M = A Σ₂ A;
- "cholesky": Σ₁ = L Lᵀ, M = Lᵀ Σ₂ L (Σ₁Σ₂ = L (Lᵀ Σ₂ L) L⁻¹); a Cholesky instead of a full eigendecomposition.
  At d = 2048 here it took 1.56 s vs eigh's 1.45 s on a quiet machine and 16 s vs 23 s on a loaded one, so it is
  not the default. A singular Σ₁ (fewer images than dimensions) has no Cholesky factor: then eigh is used.
Both equal pytorch-fid's `calculate_frechet_distance` within 1e-6 relative on the same statistics
(tests/test_metrics.py); benchmarks/bench_fid.py times them against it.

Many generated sets against one real side (a truncation sweep): `factor_reference` does the real side's `eigh`
once and keeps μ, A = √Σ_real (the symmetric PSD root) and tr Σ_real in a `RealFactor`; `frechet_distance_to`
then costs one product M = A Σ_fake A and one `eigvalsh` per set. Nothing is approximated: it is the "eigh" path
above with Σ₁ = Σ_real, the same arithmetic minus the repeated `eigh`. The identity holds for a singular Σ_real
too: A²Σ_fake = A(AΣ_fake) and (AΣ_fake)A = M share their non-zero eigenvalues. With fewer images than dimensions
the zero eigenvalues of M come out as ± rounding and each positive one adds √rounding, here as in sqrtm: such FIDs
are defined to ~1e-6 relative in float64 (ours and pytorch-fid's were 7e-7 apart at d = 2048; bench_fid.py).

Per class (`frechet_distance_of_features`), from the two samples' features rather than their statistics: with
centred features A (n₁×D) and B (n₂×D), Σ₁ = AᵀA/(n₁−1) and Σ₂ = BᵀB/(n₂−1), so Σ₁Σ₂ shares its non-zero eigenvalues
with (ABᵀ)(ABᵀ)ᵀ/c, c = (n₁−1)(n₂−1): tr √(Σ₁Σ₂) is the sum of the singular values of ABᵀ/√c, an n₁×n₂ matrix.
Exact, O(D·n₁·n₂), no D×D matrix; and no √rounding from the zero eigenvalues of a rank-deficient Σ.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RealFactor:
    """The part of FID that depends on the real statistics alone, computed once by `factor_reference`."""

    mu_D: np.ndarray
    sqrt_sigma_DD: np.ndarray  # A = √Σ, symmetric PSD (A² = Σ)
    trace_sigma: float


def _sqrt_psd(matrix_DD: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh(matrix_DD)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _sum_sqrt_eigenvalues(product_DD: np.ndarray) -> float:
    """Σ √λ(M) of an M that is symmetric PSD up to rounding (symmetrised: `eigvalsh` reads one triangle)."""
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((product_DD + product_DD.T) / 2), 0, None)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "eigh") -> float:
    """tr √(Σ₁Σ₂) for symmetric PSD Σ₁, Σ₂ ("cholesky" falls back to "eigh" when Σ₁ is singular)."""
    if method not in ("cholesky", "eigh"):
        raise ValueError(f"method must be 'cholesky' or 'eigh' (got {method!r})")
    product = None
    if method == "cholesky":
        try:
            lower = np.linalg.cholesky(sigma1)
            product = lower.T @ sigma2 @ lower
        except np.linalg.LinAlgError:
            product = None  # not positive definite: the eigh path handles PSD
    if product is None:
        root1 = _sqrt_psd(sigma1)
        product = root1 @ sigma2 @ root1
    return _sum_sqrt_eigenvalues(product)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, method: str = "eigh"
) -> float:
    """FID from the means and covariances of two feature sets, in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    trace_sqrt = trace_sqrt_product(sigma1, sigma2, method)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def factor_reference(mu: np.ndarray, sigma: np.ndarray, *, sqrt_sigma: np.ndarray | None = None) -> RealFactor:
    """The real side of FID for `frechet_distance_to`: one `eigh` of Σ, none when `sqrt_sigma` (a √Σ computed
    before, e.g. stored in a statistics file) is given."""
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} do not describe one Gaussian")
    root = _sqrt_psd(sigma) if sqrt_sigma is None else np.asarray(sqrt_sigma, np.float64)
    if root.shape != sigma.shape:
        raise ValueError(f"sqrt_sigma {root.shape} does not match sigma {sigma.shape}")
    return RealFactor(mu, root, float(np.trace(sigma)))


def frechet_distance_to(factor: RealFactor, mu_fake: np.ndarray, sigma_fake: np.ndarray) -> float:
    """FID of one generated set (feature mean and covariance) against a factored real side: one product and one
    `eigvalsh`, the same value as `frechet_distance(μ_real, Σ_real, mu_fake, sigma_fake)`."""
    mu_fake, sigma_fake = np.asarray(mu_fake, np.float64), np.asarray(sigma_fake, np.float64)
    if mu_fake.shape != factor.mu_D.shape or sigma_fake.shape != factor.sqrt_sigma_DD.shape:
        raise ValueError(
            f"fake statistics {mu_fake.shape}/{sigma_fake.shape} differ in shape from the real side's "
            f"{factor.mu_D.shape}/{factor.sqrt_sigma_DD.shape}"
        )
    diff = factor.mu_D - mu_fake
    root = factor.sqrt_sigma_DD
    trace_sqrt = _sum_sqrt_eigenvalues(root @ sigma_fake @ root)
    return float(diff @ diff + factor.trace_sigma + np.trace(sigma_fake) - 2 * trace_sqrt)


def frechet_distance_of_features(feats1_ND: np.ndarray, feats2_MD: np.ndarray) -> float:
    """FID of two feature samples (e.g. one class's real and generated images), in float64; equal to
    `frechet_distance` of their means and covariances."""
    x, y = np.asarray(feats1_ND, np.float64), np.asarray(feats2_MD, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"need two samples of ≥ 2 feature vectors of one width (got {x.shape} and {y.shape})")
    (n1, dim), n2 = x.shape, len(y)
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    centred_x, centred_y = x - mean_x, y - mean_y
    diff = mean_x - mean_y
    trace_sigma1 = np.einsum("nd,nd->", centred_x, centred_x) / (n1 - 1)
    trace_sigma2 = np.einsum("nd,nd->", centred_y, centred_y) / (n2 - 1)
    # The n₁×n₂ cross-product path while it is no larger than one D×D covariance: then its memory is at most the
    # D×D path's, and its cost (D·n₁·n₂ ≤ D³ for the product, n₁·n₂·min(n₁, n₂) ≤ D³ for the SVD) is below that
    # path's covariances, square root and eigenvalues (several D³). Classes with more images use the D×D path.
    if n1 * n2 <= dim * dim:
        cross = centred_x @ centred_y.T / np.sqrt((n1 - 1) * (n2 - 1))
        trace_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    else:
        sigma1, sigma2 = centred_x.T @ centred_x / (n1 - 1), centred_y.T @ centred_y / (n2 - 1)
        trace_sqrt = trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + trace_sigma1 + trace_sigma2 - 2 * trace_sqrt)
