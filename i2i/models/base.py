"""The translator interface: what one training iteration computes.

A model owns its networks and says, for one batch,

* ``generate(batch)``: the generator outputs, computed once per iteration;
* ``loss(phase, batch, out)``: the loss of each optimizer phase (``"G"``, ``"D"``),
  reusing ``out`` (detached for D);
* ``phases``: the order of the phases; ``param_groups()``: the parameters each
  phase's optimizer steps.

The trainer (:mod:`i2i.engine.trainer`) owns everything else: device, mixed
precision, gradient clearing and scaling, freezing D during the G step,
distributed gradient averaging, schedules, logging and checkpoints.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import Config
from ..losses import build_gan_loss, build_penalty


class TranslationModel(nn.Module):
    #: canonical config values of this translator, merged under the user's file
    defaults: dict = {}
    #: optimizer phases, in the order they run each iteration
    phases: tuple[str, ...] = ("D", "G")
    #: phase -> parameter group frozen (requires_grad=False) while that phase runs
    frozen_during: dict[str, str] = {"G": "D"}
    #: multiplier of D's loss; the reference implementations halve it to slow D down
    d_loss_weight: float = 0.5

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.gan = build_gan_loss(cfg.losses.gan.name, **cfg.losses.gan.params)
        pen = cfg.losses.penalty
        if pen.type != "none":
            self.penalty = build_penalty(pen.type, pen.weight, **pen.params)
        elif getattr(self.gan, "default_penalty", None):
            kind, weight = self.gan.default_penalty
            self.penalty = build_penalty(kind, weight)
        else:
            self.penalty = None

    # ------------------------------------------------------------------ to override
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        raise NotImplementedError

    def generate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, phase: str, batch: dict[str, Any], out: dict[str, torch.Tensor]):
        """Return ``(loss, logs)`` for ``phase``; logs maps names to detached scalars."""
        raise NotImplementedError

    def discriminators(self) -> list[nn.Module]:
        return []

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Generator output for ``x``; with ``model.test_batch_stats`` the generator runs
        as in training (batch statistics of ``x``, dropout on), as the pix2pix paper does."""
        gen = self.generator(direction)
        was_training = gen.training
        gen.train(self.cfg.model.test_batch_stats)
        try:
            return gen(x)
        finally:
            gen.train(was_training)

    def generator(self, direction: str = "AtoB") -> nn.Module:
        raise NotImplementedError

    def visuals(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Images (B x C x H x W in [-1, 1]) shown side by side in sample grids."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared pieces
    def after_step(self, phase: str) -> None:
        if phase == "D":
            for d in self.discriminators():
                self.gan.after_d_step(d)

    def d_loss(self, D: nn.Module, real_in: torch.Tensor, fake_in: torch.Tensor) -> torch.Tensor:
        """Adversarial + penalty loss of one discriminator (``fake_in`` already detached)."""
        real_logits, fake_logits = D(real_in), D(fake_in)
        loss = self.gan.d_loss(real_logits, fake_logits)
        if self.penalty is not None:
            loss = loss + self.penalty(D, real_in, fake_in, real_logits=real_logits, fake_logits=fake_logits)
        return self.d_loss_weight * loss

    def g_adv_loss(self, D: nn.Module, real_in: torch.Tensor, fake_in: torch.Tensor) -> torch.Tensor:
        real_logits = D(real_in) if self.gan.needs_real_for_g else None
        return self.gan.g_loss(D(fake_in), real_logits)

    def loss_state(self) -> dict:
        return self.gan.state_dict()

    def load_loss_state(self, state: dict) -> None:
        self.gan.load_state_dict(state)

    def loss_logs(self) -> dict[str, float]:
        return self.gan.logs()


def scalar_logs(**values: torch.Tensor) -> dict[str, torch.Tensor]:
    """Detached copies of scalar losses, converted to floats only when logged."""
    return {k: v.detach() for k, v in values.items()}
