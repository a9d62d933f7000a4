"""Exponential moving average of the inference networks' weights (Karras et al. 2018; Yazici et al. 2019).

After every iteration ``shadow = decay * shadow + (1 - decay) * weight`` for the
parameters of the model's ``ema_group`` (buffers such as batch-norm statistics
are copied).  Before ``start`` the shadow follows the weights exactly.  The
shadow is keyed like the model's state dict, so a checkpoint's ``ema`` entry
overrides the matching ``model`` entries at inference.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ..snapshot import restored


class EMA:
    def __init__(self, model: nn.Module, modules: list[nn.Module], decay: float, start: int = 0) -> None:
        self.decay, self.start = decay, start
        names = {id(t): name for name, t in model.state_dict(keep_vars=True).items() if torch.is_tensor(t)}
        param_ids = {id(p) for p in model.parameters()}
        self.tensors: dict[str, torch.Tensor] = {}
        self.averaged: set[str] = set()
        for module in modules:
            for t in (*module.parameters(), *module.buffers()):
                name = names.get(id(t))
                if name is None or name in self.tensors:
                    continue
                self.tensors[name] = t
                if id(t) in param_ids and t.is_floating_point():
                    self.averaged.add(name)
        self.shadow = {name: t.detach().clone() for name, t in self.tensors.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after iteration ``step`` (1-based)."""
        follow = step <= self.start
        for name, t in self.tensors.items():
            if follow or name not in self.averaged:
                self.shadow[name].copy_(t)
            else:
                self.shadow[name].lerp_(t.detach(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}")
        with torch.no_grad():
            for name, value in self.shadow.items():
                value.copy_(state[name])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the live modules for the duration (restored exactly after)."""
        with restored(self.tensors.values()):
            with torch.no_grad():
                for name, t in self.tensors.items():
                    t.copy_(self.shadow[name])
            yield
