"""Optimizers by group: parameters of a group's modules (each once), algorithm, schedule, clipping."""
from __future__ import annotations

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
    if cfg.type == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, eps=cfg.eps, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, train: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, train, steps_per_epoch))
