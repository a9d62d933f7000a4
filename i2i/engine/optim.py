"""Optimizers by group: parameters of a group's modules (each once), algorithm, schedule; a step the device
can cancel.

:func:`step_unless` takes an optimizer step unless a flag on the device says the step is bad, without reading
the flag on the host (which would make the host wait for the device).  Adam and AdamW run their fused kernel,
which skips the update itself when given ``found_inf`` (as under fp16 loss scaling).  The others (RMSprop,
SGD) step, then put back where the flag is set the parameters and optimizer state as they were; state the
step created is put back to zeros, its initial value (SGD's momentum buffer starts from the first gradient,
which equals a zero buffer's first update without dampening, the only kind the config offers).
"""
from __future__ import annotations

import re
import warnings

import torch
from torch import nn

from ..config import OptimConfig, TrainConfig
from .schedule import lr_lambda


def group_parameters(groups: dict[str, list[nn.Module]]) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters of each group's modules, each listed once.

    A module (or a layer) shared by two networks of a group appears once; a
    parameter in two groups would be stepped by two optimizers, which is an error.
    """
    owner: dict[int, str] = {}
    out: dict[str, list[nn.Parameter]] = {}
    for group, modules in groups.items():
        params = []
        for module in modules:
            for p in module.parameters():
                if not p.requires_grad:
                    continue
                if id(p) in owner:
                    if owner[id(p)] != group:
                        raise ValueError(f"a parameter is in optimizer groups {owner[id(p)]!r} and {group!r}")
                    continue
                owner[id(p)] = group
                params.append(p)
        out[group] = params
    return out


def make_optimizer(params: list[nn.Parameter], cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer of ``cfg.type``; Adam/AdamW use the fused kernel where torch has one (CPU, CUDA)."""
    fused = True if device.type in ("cpu", "cuda") else None
    if cfg.type in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.type == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.type == "rmsprop":  # capturable: its step counts live on the GPU, where step_unless can put them back
        return torch.optim.RMSprop(params, lr=cfg.lr, eps=cfg.eps, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                   capturable=device.type == "cuda")
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _fused(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt`` skips its own update given ``found_inf`` (fused Adam and AdamW; fused SGD does not set
    up its momentum buffers right when its first step is skipped, and i2i does not use it)."""
    return isinstance(opt, torch.optim.Adam | torch.optim.AdamW) and all(g.get("fused") for g in opt.param_groups)


@torch.no_grad()
def step_unless(opt: torch.optim.Optimizer, bad: torch.Tensor) -> None:
    """``opt.step()`` where the 0-dim bool ``bad`` (on the device) is false, no change where it is true; the
    gradients are the true (unscaled) ones.  Never reads ``bad`` on the host."""
    if _fused(opt):
        opt.found_inf = bad.float()
        try:
            opt.step()
        finally:
            del opt.found_inf
        return
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    before = {p: {k: v.clone() for k, v in opt.state.get(p, {}).items() if torch.is_tensor(v)} for p in params}
    weights = [p.detach().clone() for p in params]
    opt.step()
    for p, old in zip(params, weights):
        p.copy_(torch.where(_on(bad, p), old, p))
        for k, t in opt.state[p].items():
            if torch.is_tensor(t):  # state the step created goes back to its initial zeros
                t.copy_(torch.where(_on(bad, t), before[p].get(k, torch.zeros_like(t)), t))


def _on(flag: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``flag`` where ``t`` is (a copy to another device reads it: only for state kept off the parameters' device,
    e.g. step counts on the CPU of optimizers that are not capturable on other accelerators)."""
    return flag if flag.device == t.device else flag.to(t.device)


def make_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, train: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, train, steps_per_epoch))


def step_schedulers(schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler], optim: dict[str, OptimConfig],
                    unit: str) -> None:
    """Step the schedule of each group whose ``unit`` ("iter" or "epoch") this is."""
    for group, sched in schedulers.items():
        if optim[group].unit == unit:
            with warnings.catch_warnings():  # a group that no phase steps (an idle network) is fine
                warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                sched.step()
