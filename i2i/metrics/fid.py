"""Statistics behind the Inception metrics: Frechet distance (FID), KID and IS.

All functions take plain feature / probability arrays (NumPy or torch), so they
work with any feature extractor.  Computations are done in float64.

* FID (Heusel et al. 2017): ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` with the
  unbiased covariance.  ``Tr (S1 S2)^(1/2)`` comes from ``scipy.linalg.sqrtm``; when the
  product is singular and the root non-finite, it is retried with ``eps * I`` added
  to both covariances; a complex root whose diagonal has an imaginary part above
  1e-3 (heavily rank-deficient covariances, fewer samples than dimensions) is
  replaced by the symmetric form ``Tr (A S2 A)^(1/2)``, ``A = S1^(1/2)``, computed
  from eigenvalues clipped at 0, which is always finite.  Values are not clipped
  at 0 (identical statistics can give -1e-13).
* KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel ``(gamma x.y + coef0)^degree``
  (defaults 1/dim, 1, 3), averaged over random subsets of size ``min(n1, n2, subset_size)``
  drawn without replacement from each set with a seeded generator; returns mean and
  population std over the subsets.
* IS (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` per contiguous split
  ``[i N // s, (i + 1) N // s)`` (no shuffling), ``0 log 0 = 0``; mean and population std.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
from scipy.special import xlogy


def _as_float64(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise ValueError(f"{what} hold {int((~np.isfinite(x)).sum())} NaN or infinite value(s)")
    return x


def feature_statistics(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``N - 1``) of an ``N x D`` feature array."""
    f = _as_float64(feats)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need an N x D feature array with N >= 2, got shape {f.shape}")
    _finite(f, "the features")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def trace_sqrt_product_symmetric(sigma1, sigma2) -> float:
    """``Tr (S1 S2)^(1/2)`` as ``Tr (A S2 A)^(1/2)`` with ``A = S1^(1/2)`` (PSD, always finite)."""
    a = _psd_sqrt(_as_float64(sigma1))
    m = a @ _as_float64(sigma2) @ a
    vals = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(vals, 0.0, None)).sum())


def trace_sqrt_product(sigma1, sigma2, eps: float = 1e-6) -> float:
    """``Tr (S1 S2)^(1/2)`` via ``scipy.linalg.sqrtm``, robust to singular covariances."""
    s1, s2 = _as_float64(sigma1), _as_float64(sigma2)
    with warnings.catch_warnings():  # singular products are handled below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if not np.isfinite(covmean).all() or (
        np.iscomplexobj(covmean) and not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
    ):
        warnings.warn("FID: covariance product is too singular for sqrtm; using the symmetric "
                      "eigenvalue form (more samples than feature dimensions avoid this)", RuntimeWarning)
        return trace_sqrt_product_symmetric(s1, s2)
    return float(np.trace(covmean).real)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Squared Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``."""
    mu1, mu2 = np.atleast_1d(_as_float64(mu1)), np.atleast_1d(_as_float64(mu2))
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2, eps))


def fid_from_features(feats1, feats2, eps: float = 1e-6) -> float:
    """FID between two ``N x D`` feature sets."""
    return frechet_distance(*feature_statistics(feats1), *feature_statistics(feats2), eps=eps)


def polynomial_kernel(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
    """``(gamma x.y + coef0)^degree`` for all row pairs; ``gamma`` defaults to ``1 / dim``."""
    x, y = _as_float64(x), _as_float64(y)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 of equal-size sets: XX and YY diagonals excluded, XY diagonal kept."""
    x, y = _as_float64(x), _as_float64(y)
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise ValueError(f"need two sets of equal size >= 2, got {x.shape[0]} and {y.shape[0]}")
    kxx = polynomial_kernel(x, x, degree, gamma, coef0)
    kyy = polynomial_kernel(y, y, degree, gamma, coef0)
    kxy = polynomial_kernel(x, y, degree, gamma, coef0)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kid(feats1, feats2, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef0: float = 1.0, seed: int = 2020) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of ``mmd2_unbiased`` over random subsets."""
    x, y = _as_float64(feats1), _as_float64(feats2)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"KID needs two N x D feature arrays of the same D, got shapes {x.shape} and {y.shape}")
    m = min(x.shape[0], y.shape[0], subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {x.shape[0]} and {y.shape[0]}")
    _finite(x, "the first features")
    _finite(y, "the second features")
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        xi = rng.choice(x.shape[0], m, replace=False)
        yi = rng.choice(y.shape[0], m, replace=False)
        values.append(mmd2_unbiased(x[xi], y[yi], degree, gamma, coef0))
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score of ``N x K`` class probabilities: mean and std over ``splits``."""
    p = _as_float64(probs)
    n = p.shape[0]
    if p.ndim != 2 or not 1 <= splits <= n:
        raise ValueError(f"need N x K probabilities with N >= splits={splits}, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p >= 0).all() and np.allclose(p.sum(axis=1), 1.0, atol=1e-3)):
        raise ValueError("need rows of class probabilities (finite, >= 0, summing to 1); for logits use softmax64")
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        py = part.mean(axis=0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, py)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def softmax64(logits) -> np.ndarray:
    """Row softmax in float64 (for IS from logits)."""
    z = _as_float64(logits)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
