"""Non-finite losses and gradients: skip the update, warn, stop after too many in a row, decided on the device.

Each optimizer phase checks its loss and its gradients (under fp16 loss scaling, the unscaled ones: an overflow
is a bad step like any other, and lowers the scale) on the device, and the host never waits for the answer.  A
phase whose loss or gradient is NaN or infinite (on any process) makes no update: its optimizer step and its
``after_step`` are cancelled on the device (:func:`i2i.engine.optim.step_unless`), and the batch-norm statistics
of the model are put back as they were before the step.  :class:`BadStepGuard` counts bad steps on the device
and is read at log steps: it warns about the first bad step of a streak (naming the step and the loss that went
bad), notes when the losses are finite again, and once ``train.max_bad_steps`` bad steps came in a row it cancels
every later update and says so at the next log step; the trainer then writes a checkpoint (of the parameters
and optimizer state of the last good step, which no bad step changed) and stops with :class:`StopTraining`,
naming the loss that went bad.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Iterable

import torch
from torch import nn

from ..errors import I2IError


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


def not_finite(loss: Any, device: torch.device) -> torch.Tensor:
    """0-dim bool on ``device``: ``loss`` holds NaN or Inf."""
    return ~torch.isfinite(torch.as_tensor(loss).detach()).all().to(device)


def finite_grads(params: list[nn.Parameter], device: torch.device) -> torch.Tensor:
    """0-dim bool on ``device``: every gradient of ``params`` is finite (true without gradients)."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool, device=device)
    return torch.isfinite(torch.stack([n.float().to(device) for n in _norms(grads)])).all()


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


# a phase's record: whether it ran, whether it was bad, its loss, whether its gradients were finite, whether the
# processes gave gradients to other parameters than at its first step, whether updates were stopped already, the
# fp16 loss scale, then its logged values
_DUE, _BAD, _LOSS, _GRADS, _MISMATCH, _FROZEN, _SCALE, _LOGS = range(8)
# the guard's counters: the current streak of bad steps, the step at which the newest streak began, the number of
# streaks begun since the last read, the length and end of the newest streak that ended since then, and the step
# at which a streak reached the limit (0: none)
_STREAK, _START, _STARTS, _ENDED_LEN, _ENDED_AT, _HIT = range(6)


class BadStepGuard:
    """Counts bad steps on the device; :meth:`read` (at log steps) warns and says when to stop.

    Per step: :meth:`phase` for each phase that runs (its bad flag, computed on the device), then
    :meth:`end_step`.  Nothing here reads a tensor on the host except :meth:`read` and :meth:`last_reasons`.
    """

    def __init__(self, limit: int, device: torch.device, quiet: bool = False) -> None:
        self.limit, self.device, self.quiet = limit, device, quiet
        self.counters = torch.zeros(6, dtype=torch.int64, device=device)
        self.first, self.streak, self.hit = "", 0, 0  # set by read(): the stopping streak's first loss, length, step
        self.keys: dict[str, tuple[str, tuple[str, ...]]] = {}  # phase -> (its group, its log names)
        self.begun: dict[str, torch.Tensor] = {}  # phase -> its record at the first step of the newest streak
        self.records: dict[str, torch.Tensor] = {}  # phase -> its record at the step just done

    def start_step(self) -> None:
        self.records = {}

    @torch.no_grad()
    def phase(self, name: str, group: str, loss: torch.Tensor, logs: dict[str, torch.Tensor], bad_loss: torch.Tensor,
              grads_ok: torch.Tensor, mismatch: torch.Tensor | None = None,
              scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
        """Record one phase; returns its 0-dim bool ``bad``: ``bad_loss`` (the loss was not finite, on any
        process), gradients not finite, a ``mismatch`` of the reducer, or updates stopped after too many bad steps."""
        frozen = self.counters[_HIT] > 0
        bad = bad_loss | ~grads_ok | frozen
        if mismatch is not None:
            bad = bad | mismatch
        dev = self.device
        scale = (scaler._get_scale_async() if scaler is not None and scaler.is_enabled() else None)
        fields = [torch.ones((), device=dev), bad, torch.as_tensor(loss).detach().float().reshape(()), grads_ok,
                  mismatch if mismatch is not None else torch.zeros((), device=dev), frozen,
                  scale if scale is not None else torch.zeros((), device=dev),
                  *(torch.as_tensor(v).detach().reshape(()) for v in logs.values())]
        self.records[name] = torch.stack([f.to(dev, torch.float32) for f in fields])
        keys = (group, tuple(logs))
        if self.keys.get(name) != keys:  # a new phase, or new log names: a fresh record of the newest streak
            self.keys[name] = keys
            self.begun[name] = torch.zeros_like(self.records[name])
        return bad

    @torch.no_grad()
    def end_step(self, step: int) -> torch.Tensor:
        """Count step ``step`` (1-based) once its phases are recorded; returns its 0-dim bool ``bad``."""
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        for record in self.records.values():
            bad = bad | (record[_BAD] > 0)
        c = self.counters
        streak = torch.where(bad, c[_STREAK] + 1, 0)
        begins, ends = bad & (c[_STREAK] == 0), ~bad & (c[_STREAK] > 0)
        self.counters = torch.stack([
            streak,
            torch.where(begins, step, c[_START]),
            c[_STARTS] + begins.long(),
            torch.where(ends, c[_STREAK], c[_ENDED_LEN]),
            torch.where(ends, step, c[_ENDED_AT]),
            torch.where((c[_HIT] == 0) & (streak >= self.limit), step, c[_HIT]),
        ])
        for name, begun in self.begun.items():
            record = self.records.get(name)
            self.begun[name] = torch.where(begins, record if record is not None else torch.zeros_like(begun), begun)
        return bad

    def read(self) -> bool:
        """At a log step: print what happened since the last read; True when training must stop (then
        ``first``, ``streak`` and ``hit`` say why).  Reads the device once."""
        values = torch.cat([self.counters.double(), *(b.double() for b in self.begun.values())]).tolist()
        streak, start, starts, ended_len, ended_at, hit = (int(v) for v in values[:6])
        begun, at = {}, 6
        for name, b in self.begun.items():
            begun[name], at = values[at : at + b.numel()], at + b.numel()
        self.counters[_STARTS : _ENDED_AT + 1] = 0
        first = next((r for r in (self._reason(name, v) for name, v in begun.items()) if r), "")
        warning = note = None
        if starts and not self.quiet:
            more = f" ({starts - 1} earlier streak(s) of skipped steps since the last log step)" if starts > 1 else ""
            warning = (f"warning: step {start}: non-finite {first}: step skipped (no update){more}; training stops "
                       f"after {self.limit} such steps in a row (train.max_bad_steps)")
        if ended_at and not self.quiet:
            note = f"note: step {ended_at}: losses finite again after {ended_len} skipped step(s)"
        for line in [warning, note] if ended_at > start else [note, warning]:
            if line:
                print(line, file=sys.stderr)
        if not hit:
            return False
        self.first, self.streak, self.hit = first, self.limit, hit
        return True

    def last_reasons(self) -> list[str]:
        """What went non-finite in each bad phase of the step just done (reads the device)."""
        return [r for r in (self._reason(name, rec.tolist()) for name, rec in self.records.items()) if r]

    def _reason(self, name: str, values: list[float]) -> str:
        """``'G_gan = nan'``..., from a phase's record; '' if it ran fine (or not at all)."""
        if not values[_DUE] or not values[_BAD]:
            return ""
        group, keys = self.keys[name]
        bad_logs = [f"{k} = {v}" for k, v in zip(keys, values[_LOGS:]) if not math.isfinite(v)]
        if bad_logs:
            return ", ".join(bad_logs)
        if not math.isfinite(values[_LOSS]):
            return f"the {name} loss = {values[_LOSS]}"
        if values[_MISMATCH]:
            return (f"the gradients of optimizer group {group} (the processes gave them to other parameters than "
                    f"at the phase's first step)")
        if not values[_GRADS]:
            if values[_SCALE]:
                scale = values[_SCALE]
                return f"the gradient of optimizer group {group} (fp16 overflow at loss scale {scale:g}, lowered)"
            return f"the gradient of optimizer group {group} (its loss is finite)"
        if values[_FROZEN]:
            return f"no update after {self.limit} bad steps in a row (train.max_bad_steps)"
        return f"the {name} loss on another process"
