"""Adversarial objectives and discriminator regularizers, selected by name.

``losses.gan: NAME`` (or ``{name: NAME, PARAM: VALUE}``) picks an objective from
the ``GAN_LOSSES`` registry, ``losses.penalty: {type: NAME, weight: W}`` a penalty
from ``PENALTIES``::

    gan = build_gan_loss("hinge")
    loss_d = gan.d_loss(D(real), D(fake.detach())) + pen(D, real, fake.detach())
    loss_g = gan.g_loss(D(fake), D(real) if gan.needs_real_for_g else None)
    gan.update()  # once per iteration, after the D losses (BEGAN's k_t)
    gan.after_d_step(D)  # after the D optimizer step (WGAN weight clipping)

``PerceptualLoss`` (:mod:`i2i.losses.perceptual`) is the VGG19 feature distance any
translator can add to its generator loss, ``PatchNCELoss`` (:mod:`i2i.losses.patchnce`)
CUT's contrastive loss between the feature taps of an output and of its input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..registry import GAN_LOSSES, PENALTIES, Registry
from . import adversarial, consistency, energy, fgan, penalties, relativistic  # noqa: F401
from .base import GANLoss
from .latent import kl_unit_variance
from .patchnce import PatchNCELoss
from .penalties import Penalty
from .perceptual import PerceptualLoss


def _check(registry: Registry, name: str, what: str, params: dict) -> None:
    """What a config can be checked for without building: the name, the parameter names, finite numbers."""
    if name not in registry:
        raise ConfigError(f"{what}: {registry._unknown(name)}")
    accepted = registry.parameters(name)
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        for key in params:
            if key not in accepted:
                raise ConfigError(f"{what}: {registry.kind} {name!r} has no parameter {key!r} "
                                  f"(accepted: {', '.join(accepted) or 'none'})")
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{what}: {registry.kind} {name!r}: {key} must be a finite number, got {value}")


def _build(registry: Registry, name: str, what: str, **params):
    _check(registry, name, what, params)
    try:
        return registry.build(name, **params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {registry.kind} {name!r}: {exc}") from None


def build_gan_loss(name: str, **params) -> GANLoss:
    """The adversarial objective registered as ``name``, built with ``params``."""
    return _build(GAN_LOSSES, name, "losses.gan", **params)


def build_penalty(type: str, weight: float, **params) -> Penalty | None:
    """The penalty registered as ``type`` (already weighted); ``None`` for ``'none'``."""
    if type == "none":
        return None
    return _build(PENALTIES, type, "losses.penalty", weight=weight, **params)


def check_losses(cfg) -> None:
    """Check the names, parameter names and numbers of a ``losses:`` section, building nothing: the model
    builds its objective once (:func:`build_objective`), where a value a builder refuses is the same one line."""
    _check(GAN_LOSSES, cfg.gan.name, "losses.gan", cfg.gan.params)
    if cfg.penalty.type != "none":
        _check(PENALTIES, cfg.penalty.type, "losses.penalty", {"weight": cfg.penalty.weight, **cfg.penalty.params})


@dataclass
class Objective:
    """The adversarial losses of a ``losses:`` section, built, with the schedule they ask for."""

    gan: GANLoss
    penalty: Penalty | None  #: ``losses.penalty``, else the objective's own (WGAN-GP's gp, DRAGAN's...)
    n_critic: int  #: D steps per G step: ``losses.n_critic``, else the objective's own (5 for the WGANs)
    penalty_every: int  #: the penalty's interval (lazy regularization; 1 without a penalty)


def build_objective(cfg) -> Objective:
    """The objective and penalty of a ``losses:`` section (built once, by the model) and their schedule."""
    gan = build_gan_loss(cfg.gan.name, **cfg.gan.params)
    pen = cfg.penalty
    if pen.type != "none":
        penalty = build_penalty(pen.type, pen.weight, **pen.params)
    elif getattr(gan, "default_penalty", None):
        penalty = build_penalty(*gan.default_penalty)
    else:
        penalty = None
    return Objective(gan, penalty, cfg.n_critic or int(getattr(gan, "n_critic", 1)),
                     pen.every if penalty is not None else 1)


def gan_loss_names() -> list[str]:
    return GAN_LOSSES.names()


__all__ = ["kl_unit_variance", "GANLoss", "Objective", "Penalty", "PatchNCELoss", "PerceptualLoss", "build_gan_loss",
           "build_objective", "build_penalty", "check_losses", "gan_loss_names"]
