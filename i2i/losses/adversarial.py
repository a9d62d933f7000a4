"""Standard, least-squares, Wasserstein and hinge objectives.

Notation: ``r`` / ``f`` are logits on real / fake samples, ``sp`` = softplus,
``E`` = mean.  All sigmoid-based losses are written with softplus
(``-log sigmoid(x) = sp(-x)``), never ``log(sigmoid(x))``.

* ``minimax`` (Goodfellow et al. 2014): L_D = E sp(-r) + E sp(f), L_G = -E sp(f)
  (saturating), without any constant offset.
* ``nsgan`` / ``vanilla``: same L_D, L_G = E sp(-f) (non-saturating).
  ``real_label`` < 1 gives one-sided label smoothing: the real term becomes
  BCE(r, real_label) (0.875 = target 1 - 0.25/2, i.e. smoothing 0.25 towards 1/2).
* ``lsgan`` (Mao et al. 2017), a-b-c coding on raw logits:
  L_D = k E(r-b)^2 + k E(f-a)^2, L_G = k E(f-c)^2 with k = 1/2 (``half=True``,
  the paper's form) or k = 1 (``half=False``, plain mean squared error, the form
  CycleGAN (Zhu et al. 2017) is usually trained with).  Defaults a=0, b=1, c=1;
  the paper's other coding is a=-1, b=1, c=0.
* ``wgan`` (Arjovsky et al. 2017): L_D = E f - E r, L_G = -E f; every D
  parameter is clamped to [-clip, clip] after each D step (clip 0.01, 5 D steps).
* ``wgangp`` / ``wganlp``: the same losses, no clipping, with the gradient
  penalty 'gp' / the one-sided 'lp' (weight 10) as default penalty.
* ``hinge`` (Lim & Ye 2017): L_D = E relu(1-r) + E relu(1+f), L_G = -E f.
  SNGAN is this loss plus ``nets.discriminator.spectral_norm: true``.
* ``dragan`` (Kodali et al. 2017): non-saturating losses with the 'dragan'
  penalty (weight 10) as default penalty.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import GAN_LOSSES
from .base import GANLoss


class Minimax(GANLoss):
    """Original minimax objective with the saturating generator loss."""

    def __init__(self, real_label: float = 1.0) -> None:
        self.real_label = float(real_label)

    def _d(self, r, f):
        target = torch.full_like(r, self.real_label)
        return F.binary_cross_entropy_with_logits(r, target) + F.softplus(f).mean()

    def _g(self, f, r):
        return -F.softplus(f).mean()


class NonSaturating(Minimax):
    """Minimax D loss, non-saturating G loss ``E sp(-f)``."""

    def _g(self, f, r):
        return F.softplus(-f).mean()


class LeastSquares(GANLoss):
    """LSGAN with labels a (fake), b (real), c (G's target); ``half`` selects the 1/2 factor."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, half: bool = True) -> None:
        self.a, self.b, self.c, self.half = float(a), float(b), float(c), bool(half)

    def _k(self) -> float:
        return 0.5 if self.half else 1.0

    def _d(self, r, f):
        return self._k() * (((r - self.b) ** 2).mean() + ((f - self.a) ** 2).mean())

    def _g(self, f, r):
        return self._k() * ((f - self.c) ** 2).mean()


class Wasserstein(GANLoss):
    """Critic loss ``E f - E r``, G loss ``-E f``; optional weight clipping after each D step."""

    def __init__(self, clip: float | None = 0.01, n_critic: int = 5) -> None:
        if clip is not None and clip <= 0:
            raise ValueError(f"clip must be > 0 or None, got {clip!r}")
        self.clip, self.n_critic = clip, int(n_critic)

    def _d(self, r, f):
        return f.mean() - r.mean()

    def _g(self, f, r):
        return -f.mean()

    @torch.no_grad()
    @torch.no_grad()
    def after_d_step(self, D: nn.Module, ok: torch.Tensor | None = None) -> None:
        if self.clip is not None:
            for p in D.parameters():
                if ok is None:
                    p.clamp_(-self.clip, self.clip)
                else:
                    p.copy_(torch.where(ok, p.clamp(-self.clip, self.clip), p))


class Hinge(GANLoss):
    """Hinge D loss with margin 1, G loss ``-E f``."""

    def _d(self, r, f):
        return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()

    def _g(self, f, r):
        return -f.mean()


GAN_LOSSES.register("minimax")(Minimax)
GAN_LOSSES.register("vanilla")(NonSaturating)
GAN_LOSSES.register("nsgan")(NonSaturating)
GAN_LOSSES.register("lsgan")(LeastSquares)
GAN_LOSSES.register("wgan")(Wasserstein)
GAN_LOSSES.register("hinge")(Hinge)


def _with_penalty(loss: GANLoss, kind: str, weight: float) -> GANLoss:
    loss.default_penalty = (kind, float(weight))
    return loss


@GAN_LOSSES.register("wgangp")
def wgangp(n_critic: int = 5, gp_weight: float = 10.0) -> Wasserstein:
    """WGAN-GP: Wasserstein losses, no clipping, default penalty ('gp', gp_weight)."""
    return _with_penalty(Wasserstein(clip=None, n_critic=n_critic), "gp", gp_weight)


@GAN_LOSSES.register("wganlp")
def wganlp(n_critic: int = 5, lp_weight: float = 10.0) -> Wasserstein:
    """WGAN-LP: Wasserstein losses, no clipping, default penalty ('lp', lp_weight)."""
    return _with_penalty(Wasserstein(clip=None, n_critic=n_critic), "lp", lp_weight)


@GAN_LOSSES.register("dragan")
def dragan(real_label: float = 1.0, dragan_weight: float = 10.0) -> NonSaturating:
    """DRAGAN: non-saturating losses, default penalty ('dragan', dragan_weight)."""
    return _with_penalty(NonSaturating(real_label), "dragan", dragan_weight)
