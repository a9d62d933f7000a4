"""Learning-rate policies, as multipliers of the initial lr per finished epoch."""
from __future__ import annotations

import math
from typing import Callable

from ..config import TrainConfig


def lr_lambda(train: TrainConfig) -> Callable[[int], float]:
    """Multiplier after ``epoch`` finished epochs.

    * ``linear``: 1 for ``epochs`` epochs, then linear decay over ``epochs_decay``
      epochs (the pix2pix/CycleGAN rule ``1 - max(0, e + 1 - epochs) / (epochs_decay + 1)``),
    * ``step``: times ``lr_gamma`` every ``lr_step_epochs`` epochs,
    * ``cosine``: cosine from 1 to 0 over the decay epochs, after the constant ones,
    * ``constant``: 1.
    """
    n, n_decay = train.epochs, train.epochs_decay

    def linear(epoch: int) -> float:
        return max(0.0, 1.0 - max(0, epoch + 1 - n) / float(n_decay + 1))

    def step(epoch: int) -> float:
        return train.lr_gamma ** (epoch // train.lr_step_epochs)

    def cosine(epoch: int) -> float:
        t = min(max(0, epoch - n) / max(1, n_decay), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return {"linear": linear, "step": step, "cosine": cosine, "constant": lambda epoch: 1.0}[train.lr_policy]
