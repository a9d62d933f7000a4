"""Non-finite losses and gradients: skip the update, warn, stop after too many in a row.

Each optimizer phase checks its loss and its gradients (under fp16 loss scaling,
the unscaled ones: an overflow is a bad step like any other, and lowers the scale),
with one device sync.  A phase whose loss or gradient is NaN or infinite makes no
update: no optimizer step, no ``after_step``; the batch-norm statistics of the model
are put back as they were before the step.  The first bad step of a streak is warned about; after
``train.max_bad_steps`` bad steps in a row the trainer writes a checkpoint (of the
parameters and optimizer state of the last good step, which no bad step changed) and
stops with :class:`StopTraining`, naming the loss that went bad.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable

import torch
from torch import nn

from ..errors import I2IError
from . import distributed as dist


class StopTraining(I2IError):
    """Training cannot go on (non-finite losses, an interruption); a checkpoint was written where possible."""

    exit_code = 1


def _norms(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    foreach = getattr(torch, "_foreach_norm", None)
    if foreach is not None:
        try:
            return list(foreach(grads))
        except RuntimeError:  # mixed devices or dtypes
            pass
    return [g.norm() for g in grads]


def non_finite(phase, loss: Any, logs: dict[str, torch.Tensor], params: list[nn.Parameter],
               device: torch.device, scaler: torch.amp.GradScaler | None = None) -> str | None:
    """What went non-finite in this phase (``'G_gan = nan'``...), or None if the loss and gradients are finite
    (``scaler``: the phase's fp16 loss scaler, which has unscaled the gradients)."""
    loss = torch.as_tensor(loss).detach()
    checks = [torch.isfinite(loss).all().to(device)]
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if grads:
        checks.append(torch.isfinite(torch.stack([n.float().to(device) for n in _norms(grads)])).all())
    ok = bool(torch.stack(checks).all())
    if not dist.any_rank(not ok, device):
        return None
    bad = [f"{k} = {float(v)}" for k, v in logs.items() if not bool(torch.isfinite(torch.as_tensor(v)).all())]
    if bad:
        return ", ".join(bad)
    if not bool(torch.isfinite(loss).all()):
        return f"the {phase.name} loss = {float(loss)}"
    if not ok:
        if scaler is not None and scaler.is_enabled():
            return f"the gradient of optimizer group {phase.group} (fp16 overflow at loss scale {scaler.get_scale():g}, lowered)"
        return f"the gradient of optimizer group {phase.group} (its loss is finite)"
    return f"the {phase.name} loss on another process"


class BufferSnapshot:
    """The model's buffers (batch-norm statistics...) before a step, to put back after a bad one."""

    def __init__(self, model: nn.Module) -> None:
        self.saved = [(b, b.detach().clone()) for b in model.buffers()]

    @torch.no_grad()
    def restore(self) -> None:
        for buf, value in self.saved:
            buf.copy_(value)


def finite_tensors(tensors: Iterable[tuple[str, Any]]) -> str | None:
    """The name of the first floating tensor holding NaN or Inf, else None."""
    for name, t in tensors:
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def finite_state(model: nn.Module, ema=None) -> str | None:
    """The first non-finite weight or buffer of ``model`` (or of its EMA), else None."""
    found = finite_tensors(model.state_dict().items())
    if found is None and ema is not None:
        found = finite_tensors((f"ema {k}", v) for k, v in ema.state_dict().items())
    return found


class BadStepGuard:
    """Counts bad steps in a row; warns at the first of a streak; says when the streak is too long."""

    def __init__(self, limit: int, quiet: bool = False) -> None:
        self.limit, self.quiet = limit, quiet
        self.streak, self.first, self.skipped = 0, "", 0

    def update(self, step: int, bad: list[str]) -> bool:
        """Record the step just done; True when ``limit`` bad steps came in a row."""
        if not bad:
            if self.streak and not self.quiet:
                print(f"note: step {step}: losses finite again after {self.streak} skipped step(s)", file=sys.stderr)
            self.streak = 0
            return False
        self.streak += 1
        self.skipped += 1
        if self.streak == 1:
            self.first = bad[0]
            if not self.quiet:
                print(f"warning: step {step}: non-finite {bad[0]}: step skipped (no update); training stops after "
                      f"{self.limit} such steps in a row (train.max_bad_steps)", file=sys.stderr)
        return self.streak >= self.limit
