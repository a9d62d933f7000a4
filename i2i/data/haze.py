"""Synthetic haze with the atmospheric scattering model (Koschmieder; McCartney 1976; used by
He et al. 2009 and the RESIDE benchmark, Li et al. 2019).

A hazy image ``I`` is the clear scene radiance ``J`` attenuated by the medium, plus the
ambient light ``A`` (the airlight) scattered towards the camera::

    I(x) = J(x) t(x) + A (1 - t(x)),    t(x) = exp(-beta d(x))

with ``t`` the transmission, ``beta`` the scattering coefficient and ``d`` the scene depth.
Images are float arrays in [0, 1]; ``A`` is a gray level (or one value per channel).

Depth.  A given depth map (an image file read as gray, or a ``.npy`` float array) is
normalized per image to ``d / max(d)``, so ``d`` lies in [0, 1] and ``beta`` is the optical
thickness of the farthest point: ``beta = 1.8`` leaves that point ``exp(-1.8) = 17 %`` of its
radiance.  Without a depth map, :func:`gradient_depth` is used: a smooth vertical ramp from
``far`` (1.0) on the top row to ``near`` (0.3) on the bottom row.  It encodes the usual
layout of a photograph (ground and near objects at the bottom, the distance towards the top)
and keeps some haze everywhere; it knows nothing of the actual scene, so a model trained on it
learns haze that does not follow object boundaries.
"""
from __future__ import annotations

import numpy as np

FALLBACK_NEAR = 0.3  #: fallback depth of the bottom row
FALLBACK_FAR = 1.0  #: fallback depth of the top row


def transmission(depth: np.ndarray, beta: float) -> np.ndarray:
    """``t = exp(-beta d)``."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return np.exp(-beta * np.asarray(depth, dtype=np.float64))


def add_haze(clear: np.ndarray, t: np.ndarray, airlight: float | np.ndarray) -> np.ndarray:
    """``I = J t + A (1 - t)`` for ``J`` of shape ``H x W x C`` (or ``H x W``) and ``t`` of shape ``H x W``."""
    clear = np.asarray(clear, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if clear.ndim == 3 and t.ndim == 2:
        t = t[:, :, None]
    if t.shape[:2] != clear.shape[:2]:
        raise ValueError(f"transmission is {t.shape[0]}x{t.shape[1]}, image is {clear.shape[0]}x{clear.shape[1]}")
    return clear * t + np.asarray(airlight, dtype=np.float64) * (1.0 - t)


def gradient_depth(height: int, width: int, near: float = FALLBACK_NEAR, far: float = FALLBACK_FAR) -> np.ndarray:
    """Fallback depth: ``far`` on the top row, falling linearly to ``near`` on the bottom row."""
    ramp = np.linspace(far, near, height) if height > 1 else np.full(1, far)
    return np.repeat(ramp[:, None], width, axis=1)


def normalize_depth(depth: np.ndarray) -> np.ndarray:
    """``d / max(d)`` (a map that is zero everywhere stays zero); negative values are clipped to 0."""
    depth = np.clip(np.asarray(depth, dtype=np.float64), 0.0, None)
    peak = float(depth.max()) if depth.size else 0.0
    return depth / peak if peak > 0 else depth


def hazy_uint8(clear: np.ndarray, depth: np.ndarray | None, beta: float, airlight: float) -> np.ndarray:
    """Hazy version of a ``uint8`` image: depth normalized (or the fallback), model applied, rounded."""
    h, w = clear.shape[:2]
    d = gradient_depth(h, w) if depth is None else normalize_depth(depth)
    if d.shape != (h, w):
        raise ValueError(f"depth map is {d.shape[0]}x{d.shape[1]}, image is {h}x{w}")
    hazy = add_haze(clear.astype(np.float64) / 255.0, transmission(d, beta), airlight)
    return np.round(np.clip(hazy, 0.0, 1.0) * 255.0).astype(np.uint8)


def sample_parameters(rng: np.random.Generator, beta: tuple[float, float], airlight: tuple[float, float],
                      n: int) -> list[tuple[float, float]]:
    """``n`` draws of ``(beta, A)``, each uniform in its range."""
    return [(float(rng.uniform(*beta)), float(rng.uniform(*airlight))) for _ in range(n)]
