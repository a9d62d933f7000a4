"""Translators, one file each; importing this package registers them in MODELS."""
from ..registry import MODELS
from .adversarial import AdversarialModel
from .base import Model, Phase, preserved_buffers, scalar_logs
from . import cogan, cut, cyclegan, dehazegan, pix2pix, unit  # noqa: F401  (registration)


def build_model(cfg) -> Model:
    return MODELS.get(cfg.model.name)(cfg)


__all__ = ["AdversarialModel", "Model", "Phase", "build_model", "preserved_buffers", "scalar_logs", "MODELS"]
