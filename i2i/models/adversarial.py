"""What every GAN translator shares: the objective, the penalty, and the D / G phases.

A subclass says which (discriminator, real, fake) triples D sees
(``d_terms``) and what G minimizes (``g_loss``); this class turns them into the
phases ``D`` (every iteration), ``G`` (every ``losses.n_critic`` iterations, D
frozen) and, with ``losses.penalty.every > 1``, a lazy ``D_reg`` phase that
applies the penalty alone every k D steps with its weight times k (Karras et
al. 2020).  ``d_terms`` runs once per ``generate`` output (its result is kept in
that dict under ``"d_terms"``), so ``D`` and ``D_reg`` judge the same inputs and
an image pool is queried once per iteration.  After the ``D`` losses of every
discriminator the objective updates its state once (BEGAN's k_t).  Any model
works with any objective and penalty of :mod:`i2i.losses`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import Config
from ..losses import build_objective
from .base import Model, Phase, scalar_logs


class AdversarialModel(Model):
    groups = ("G", "D")
    ema_group = "G"
    #: order of the D and G phases in an iteration
    phase_order: tuple[str, ...] = ("D", "G")
    #: multiplier of D's loss; the reference implementations halve it to slow D down
    d_loss_weight: float = 0.5

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        objective = build_objective(cfg.losses)
        self.gan, self.penalty = objective.gan, objective.penalty
        self.n_critic, self.penalty_every = objective.n_critic, objective.penalty_every
        self.penalty_rng: torch.Generator | None = None  # the step's generator (start_step)

    # ------------------------------------------------------------------ to implement
    def discriminators(self) -> list[nn.Module]:
        raise NotImplementedError

    def generators(self) -> list[nn.Module]:
        raise NotImplementedError

    def d_terms(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> list[tuple[str, nn.Module, Any, Any]]:
        """``[(log name, D, real input, fake input detached)]``: what each discriminator judges."""
        raise NotImplementedError

    def g_loss(self, batch: dict[str, Any], out: dict[str, torch.Tensor]):
        """``(loss, logs)`` minimized by the generators."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the contract
    def optim_groups(self) -> dict[str, list[nn.Module]]:
        return {"G": self.generators(), "D": self.discriminators()}

    def phases(self) -> list[Phase]:
        table = {
            "D": Phase("D", "D"),
            "G": Phase("G", "G", frozen=("D",), every=self.n_critic, grad_through_outputs=True),
        }
        phases = [table[name] for name in self.phase_order]
        if self.penalty_every > 1:
            phases.append(Phase("D_reg", "D", every=self.penalty_every))
        return phases

    def loss(self, phase: str, batch: dict[str, Any], out: dict[str, torch.Tensor]):
        if phase == "G":
            return self.g_loss(batch, out)
        lazy = self.penalty_every > 1
        total, logs = 0.0, {}
        if "d_terms" not in out:  # once per iteration: d_terms may draw from an image pool
            out["d_terms"] = self.d_terms(batch, out)
        for name, D, real_in, fake_in in out["d_terms"]:
            if phase == "D_reg":
                term = self.penalty(D, real_in, fake_in, generator=self.penalty_rng) * self.penalty_every
                logs[f"{name}_reg"] = term
            else:
                term = self.d_loss_weight * self.d_loss(D, real_in, fake_in, with_penalty=not lazy)
                logs[name] = term
            total = total + term
        if phase == "D":
            self.gan.update()
        return total, scalar_logs(**logs)

    def start_step(self, generator: torch.Generator) -> None:
        """The penalty draws its random numbers (GP, LP, DRAGAN) from the step's shared generator,
        for the global batch, so that data-parallel processes compute the penalty of one process."""
        self.penalty_rng = generator

    def after_step(self, phase: str, ok: torch.Tensor | None = None) -> None:
        if phase == "D":
            for d in self.discriminators():
                self.gan.after_d_step(d, ok)

    # ------------------------------------------------------------------ pieces
    def d_loss(self, D: nn.Module, real_in, fake_in, with_penalty: bool = True) -> torch.Tensor:
        """Adversarial (+ penalty) loss of one discriminator (``fake_in`` already detached)."""
        real_logits, fake_logits = D(real_in), D(fake_in)
        loss = self.gan.d_loss(real_logits, fake_logits)
        if with_penalty and self.penalty is not None:
            loss = loss + self.penalty(D, real_in, fake_in, real_logits=real_logits, fake_logits=fake_logits,
                                       generator=self.penalty_rng)
        return loss

    def g_adv_loss(self, D: nn.Module, real_in, fake_in) -> torch.Tensor:
        real_logits = D(real_in) if self.gan.needs_real_for_g else None
        return self.gan.g_loss(D(fake_in), real_logits)

    def loss_state(self) -> dict:
        return self.gan.state_dict()

    def load_loss_state(self, state: dict) -> None:
        self.gan.load_state_dict(state)

    def loss_logs(self) -> dict[str, float]:
        return self.gan.logs()
