"""Relativistic objectives (Jolicoeur-Martineau 2018).

D estimates how much more realistic real data is than fake data.  With
``ra = r - E f`` and ``fa = f - E r`` (batch means over all logit elements,
*not* detached):

* ``rsgan`` (pairs real i with fake i): L_D = E sp(-(r - f)), L_G = E sp(-(f - r)).
* ``rasgan``: L_D = E sp(-ra) + E sp(fa), L_G = E sp(ra) + E sp(-fa).
* ``ralsgan``: L_D = E (ra-1)^2 + E (fa+1)^2, L_G = E (fa-1)^2 + E (ra+1)^2.
* ``rahinge``: L_D = E relu(1-ra) + E relu(1+fa), L_G = E relu(1-fa) + E relu(1+ra).

Scaling: the paper's formulas sum the real and fake terms (the default here);
halving them, as some implementations do, is selectable with ``half=True``.  The G loss needs D's logits on the real batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import GAN_LOSSES
from .base import GANLoss


class _Relativistic(GANLoss):
    needs_real_for_g = True

    def __init__(self, half: bool = False) -> None:
        self.half = bool(half)

    def _scale(self, loss):
        return 0.5 * loss if self.half else loss


class RSGAN(_Relativistic):
    """Relativistic standard GAN (pairwise); ``half`` has no effect (one term)."""

    def _d(self, r, f):
        return F.softplus(-(_paired(r, f) - f)).mean()

    def _g(self, f, r):
        return F.softplus(-(_paired(f, r) - r)).mean()


def _paired(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a``, if it has ``b``'s shape: the pairwise loss compares the i-th real with the i-th fake."""
    if a.shape != b.shape:
        raise ValueError(f"rsgan compares real and fake logits pairwise: their shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)} differ (the averaged forms, rasgan..., do not need equal batches)")
    return a


class _Average(_Relativistic):
    """``L_D = E phi(ra) + E psi(fa)``, ``L_G = E phi(fa) + E psi(ra)``."""

    @staticmethod
    def _real_term(x):  # loss of a sample that should look "more real"
        raise NotImplementedError

    @staticmethod
    def _fake_term(x):  # loss of a sample that should look "less real"
        raise NotImplementedError

    def _d(self, r, f):
        ra, fa = r - f.mean(), f - r.mean()
        return self._scale(self._real_term(ra).mean() + self._fake_term(fa).mean())

    def _g(self, f, r):
        ra, fa = r - f.mean(), f - r.mean()
        return self._scale(self._real_term(fa).mean() + self._fake_term(ra).mean())


class RaSGAN(_Average):
    _real_term = staticmethod(lambda x: F.softplus(-x))
    _fake_term = staticmethod(F.softplus)


class RaLSGAN(_Average):
    _real_term = staticmethod(lambda x: (x - 1.0) ** 2)
    _fake_term = staticmethod(lambda x: (x + 1.0) ** 2)


class RaHinge(_Average):
    _real_term = staticmethod(lambda x: F.relu(1.0 - x))
    _fake_term = staticmethod(lambda x: F.relu(1.0 + x))


GAN_LOSSES.register("rsgan")(RSGAN)
GAN_LOSSES.register("rasgan")(RaSGAN)
GAN_LOSSES.register("ralsgan")(RaLSGAN)
GAN_LOSSES.register("rahinge")(RaHinge)
