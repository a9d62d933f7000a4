"""Learning-rate schedules: a multiplier of a group's initial lr per finished epoch or iteration."""
from __future__ import annotations

import math
from typing import Callable

from ..config import OptimConfig, TrainConfig


def lr_lambda(opt: OptimConfig, train: TrainConfig, steps_per_epoch: int = 1) -> Callable[[int], float]:
    """Multiplier after ``t`` finished units (epochs, or iterations with ``opt.unit: iter``).

    * ``linear``: 1 for ``train.epochs`` epochs, then linear decay over ``train.epochs_decay``
      epochs (the pix2pix/CycleGAN rule ``1 - max(0, t + 1 - n) / (n_decay + 1)``);
    * ``step``: times ``gamma`` every ``step_size`` units;
    * ``cosine``: cosine from 1 to 0 over the decay epochs, after the constant ones;
    * ``constant``: 1.

    With ``unit: iter`` the epoch counts are converted to iterations
    (``steps_per_epoch`` each) and the lr changes after every iteration.
    """
    scale = steps_per_epoch if opt.unit == "iter" else 1
    n, n_decay = train.epochs * scale, train.epochs_decay * scale

    def linear(t: int) -> float:
        return max(0.0, 1.0 - max(0, t + 1 - n) / float(n_decay + 1))

    def step(t: int) -> float:
        return opt.gamma ** (t // opt.step_size)

    def cosine(t: int) -> float:
        x = min(max(0, t - n) / max(1, n_decay), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * x))

    return {"linear": linear, "step": step, "cosine": cosine, "constant": lambda t: 1.0}[opt.schedule]
