"""Gradient penalties on the discriminator, added to its loss.

A penalty is called as ``pen(D, real_input, fake_input, real_logits=None,
fake_logits=None, generator=None)`` and returns the weighted scalar.  D is run
on the penalty's own inputs in fp32 with autocast disabled; gradients are taken with
``create_graph=True`` so the penalty can be back-propagated.

D's per-sample critic value is the mean of its outputs over all non-batch
dimensions (and over scales for a multi-scale D): the same reduction the
losses use, and the plain output when D returns one logit per sample.  The
gradient norm is per sample over all input dimensions (C*H*W).

* ``gp`` (Gulrajani et al. 2017): E (||grad D(x_hat)|| / target - 1)^2,
  x_hat = e x + (1 - e) x_fake, e ~ U[0, 1] per sample; target 1 (a target t
  penalizes the norm relative to t).
* ``lp`` (Petzka et al. 2018): E max(0, ||grad D(x_hat)|| / target - 1)^2.
* ``dragan`` (Kodali et al. 2017), reference-code recipe: x_p = x + c std(x) U[0,1]
  (std over the whole real batch, c = 0.5), x_hat = x + a (x_p - x) with
  a ~ U[0,1] per sample, E (||grad D(x_hat)|| / k - 1)^2 with k = 1.
* ``r1`` / ``r2`` (Mescheder et al. 2018): (gamma/2) E ||grad D(x)||^2 on the real
  / fake inputs, where gamma is the weight.  ``half=False`` drops the 1/2 (the
  form of the paper's code, where the weight is gamma/2).

Data-parallel runs (:mod:`i2i.losses.global_batch`): dragan's std is over the
global batch, and the random numbers of gp, lp and dragan come from the global
RNG or, when ``generator`` is given, are drawn for the global batch and sliced to
this process's samples.  Processes whose generators are in the same state (the
trainer gives the model one seeded from the run seed and the step) thus compute
the gradients of one process with the whole batch.
"""
from __future__ import annotations

import math

from typing import Sequence

import torch
from torch import nn

from ..nn.sync_bn import differentiable_twice
from ..registry import PENALTIES
from .base import Logits
from .global_batch import global_std, shared_uniform


def critic_value(out: Logits) -> torch.Tensor:
    """Per-sample critic value (B,) of a D output (tensor or list of scales)."""
    scales = [out] if isinstance(out, torch.Tensor) else list(out)
    values = [o.float().flatten(1).mean(1) if o.dim() > 1 else o.float() for o in scales]
    return values[0] if len(values) == 1 else torch.stack(values).mean(0)


def run_fp32(D: nn.Module, x: torch.Tensor) -> Logits:
    """``D(x)`` with fp32 input and autocast disabled, eagerly where D is compiled (``train.compile``):
    the penalties differentiate its input gradient, and compiled graphs have no double backward."""
    with torch.autocast(device_type=x.device.type, enabled=False), torch.compiler.set_stance("force_eager"):
        return D(x.float())


def input_gradients(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample flattened gradient (B, C*H*W) of D's critic value at ``x``, graph kept (D's synchronized
    batch norms, ``train.sync_bn``, stay twice differentiable: :func:`i2i.nn.sync_bn.differentiable_twice`)."""
    with torch.enable_grad(), differentiable_twice(D):
        x = x.detach().float().requires_grad_(True)
        value = critic_value(run_fp32(D, x))
        (grad,) = torch.autograd.grad(value.sum(), x, create_graph=True)
    return grad.flatten(1)


def per_sample_uniform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """U[0, 1] numbers, one per sample, shaped to broadcast over ``x`` (see :func:`shared_uniform`)."""
    return shared_uniform(x, generator, per_sample=True)


def _pair(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(real.shape[0], fake.shape[0])
    return real[:n].detach().float(), fake[:n].detach().float()


class Penalty:
    """Base: ``weight * self.value(...)``."""

    def __init__(self, weight: float = 10.0) -> None:
        if not (isinstance(weight, (int, float)) and not isinstance(weight, bool) and 0 <= weight < math.inf):
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        self.weight = float(weight)

    def __call__(self, D: nn.Module, real_input: torch.Tensor, fake_input: torch.Tensor,
                 real_logits: Logits | None = None, fake_logits: Logits | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.weight * self.value(D, real_input, fake_input, real_logits, fake_logits, generator)

    def value(self, D, real_input, fake_input, real_logits, fake_logits, generator=None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class GradientPenalty(Penalty):
    """Two-sided (gp) or one-sided (lp) penalty on the gradient norm at interpolates."""

    def __init__(self, weight: float = 10.0, target: float = 1.0, one_sided: bool = False, eps: float = 1e-12) -> None:
        if target <= 0:
            raise ValueError(f"target must be > 0, got {target!r}")
        super().__init__(weight)
        self.target, self.one_sided, self.eps = float(target), bool(one_sided), float(eps)

    def points(self, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        real, fake = _pair(real, fake)
        e = per_sample_uniform(real, generator)
        return e * real + (1 - e) * fake

    def value(self, D, real_input, fake_input, real_logits, fake_logits, generator=None):
        g = input_gradients(D, self.points(real_input, fake_input, generator))
        gap = torch.sqrt(g.pow(2).sum(1) + self.eps) / self.target - 1.0
        if self.one_sided:
            gap = gap.clamp(min=0)
        return gap.pow(2).mean()


class DraganPenalty(GradientPenalty):
    """Gradient penalty around perturbed real samples (fake input unused)."""

    def __init__(self, weight: float = 10.0, c: float = 0.5, k: float = 1.0, eps: float = 1e-12) -> None:
        super().__init__(weight, target=k, one_sided=False, eps=eps)
        self.c = float(c)

    def points(self, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = real.detach().float()
        x_p = x + self.c * global_std(x) * shared_uniform(x, generator)
        return x + per_sample_uniform(x, generator) * (x_p - x)


class ZeroCentered(Penalty):
    """R1 (``on='real'``) or R2 (``on='fake'``): (weight/2) E ||grad D(x)||^2."""

    def __init__(self, weight: float = 10.0, on: str = "real", half: bool = True) -> None:
        if on not in ("real", "fake"):
            raise ValueError(f"on must be 'real' or 'fake', got {on!r}")
        super().__init__(weight)
        self.on, self.half = on, bool(half)

    def value(self, D, real_input, fake_input, real_logits, fake_logits, generator=None):
        x = real_input if self.on == "real" else fake_input
        sq = input_gradients(D, x).pow(2).sum(1).mean()
        return 0.5 * sq if self.half else sq


@PENALTIES.register("gp")
def gp(weight: float = 10.0, target: float = 1.0, eps: float = 1e-12) -> GradientPenalty:
    return GradientPenalty(weight, target=target, one_sided=False, eps=eps)


@PENALTIES.register("lp")
def lp(weight: float = 10.0, target: float = 1.0, eps: float = 1e-12) -> GradientPenalty:
    return GradientPenalty(weight, target=target, one_sided=True, eps=eps)


@PENALTIES.register("r1")
def r1(weight: float = 10.0, half: bool = True) -> ZeroCentered:
    return ZeroCentered(weight, on="real", half=half)


@PENALTIES.register("r2")
def r2(weight: float = 10.0, half: bool = True) -> ZeroCentered:
    return ZeroCentered(weight, on="fake", half=half)


PENALTIES.register("dragan")(DraganPenalty)

__all__: Sequence[str] = ["Penalty", "GradientPenalty", "DraganPenalty", "ZeroCentered",
                          "critic_value", "input_gradients", "run_fp32"]
