"""Translators, one file each; importing this package registers them in MODELS."""
from ..registry import MODELS
from .base import TranslationModel
from . import cyclegan, pix2pix  # noqa: F401  (registration)


def build_model(cfg) -> TranslationModel:
    return MODELS.build(cfg.model.name, cfg)


__all__ = ["TranslationModel", "build_model", "MODELS"]
