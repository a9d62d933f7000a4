"""f-GAN (Nowozin et al. 2016): variational divergence minimization.

D's raw output v goes through the output activation ``g_f`` (T = g_f(v), in
the domain of the conjugate f*).  With F = E_r g_f(r) - E_f f*(g_f(f)):

* L_D = -F = -E_r g_f(r) + E_f f*(g_f(f));
* L_G = -E_f g_f(f) (``g_form='alt'``, the paper's practical "-log D"-style
  heuristic, default) or L_G = -E_f f*(g_f(f)) (``g_form='sat'``, the saddle
  point objective).

Each divergence below gives g_f(v) and the composite f*(g_f(v)) in a stable
closed form.  ``js`` is the tabulated Jensen-Shannon generator, which yields
2 JSD; ``gan`` is the row that reduces to the standard GAN.  ``exp`` arguments
are clamped at :data:`EXP_MAX` to avoid overflow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from ..registry import GAN_LOSSES
from .base import GANLoss

EXP_MAX = 50.0
LOG2 = math.log(2.0)


def _exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x.clamp(max=EXP_MAX))


@dataclass(frozen=True)
class Divergence:
    activation: Callable[[torch.Tensor], torch.Tensor]  #: g_f(v)
    conjugate: Callable[[torch.Tensor], torch.Tensor]  #: f*(g_f(v))


DIVERGENCES: dict[str, Divergence] = {
    "kl": Divergence(lambda v: v, lambda v: _exp(v - 1.0)),
    "reverse_kl": Divergence(lambda v: -_exp(-v), lambda v: v - 1.0),
    "js": Divergence(lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2),
    "gan": Divergence(lambda v: -F.softplus(-v), F.softplus),
    "pearson": Divergence(lambda v: v, lambda v: v * v / 4.0 + v),
    "neyman": Divergence(lambda v: 1.0 - _exp(-v), lambda v: 2.0 - 2.0 * _exp(-v / 2.0)),
    "hellinger": Divergence(lambda v: 1.0 - _exp(-v), lambda v: _exp(v) - 1.0),
    "tv": Divergence(lambda v: 0.5 * torch.tanh(v), lambda v: 0.5 * torch.tanh(v)),
}


class FGAN(GANLoss):
    """f-GAN objective for ``divergence`` (one of :data:`DIVERGENCES`)."""

    def __init__(self, divergence: str = "js", g_form: str = "alt") -> None:
        if divergence not in DIVERGENCES:
            raise ValueError(f"unknown f-divergence {divergence!r}; expected one of {', '.join(DIVERGENCES)}")
        if g_form not in ("alt", "sat"):
            raise ValueError(f"g_form must be 'alt' or 'sat', got {g_form!r}")
        self.divergence, self.g_form = divergence, g_form
        self._f = DIVERGENCES[divergence]

    def _d(self, r, f):
        return -self._f.activation(r).mean() + self._f.conjugate(f).mean()

    def _g(self, f, r):
        if self.g_form == "alt":
            return -self._f.activation(f).mean()
        return -self._f.conjugate(f).mean()


GAN_LOSSES.register("fgan")(FGAN)
for _name in DIVERGENCES:
    GAN_LOSSES.register(f"fgan_{_name}")(partial(FGAN, _name))
