"""DehazeGAN (Dehaze-GAN, "Single Image Haze Removal using a Generative Adversarial Network",
Raj and Venkateswaran 2018): pix2pix with an FC-DenseNet generator and a perceptual term.

G is the 56-layer Tiramisu (``tiramisu`` generator), D a conditional 70x70 PatchGAN
on (hazy, clear) pairs, and G minimizes
``gan_w * adversarial + l1_w * |G(x) - y|_1 + vgg_w * |VGG(G(x)) - VGG(y)|_1``
with VGG19 features up to ``pool4`` (:class:`i2i.losses.PerceptualLoss`).

Defaults as in the reference code: weights 2 / 100 / 10, Adam(1e-3, 0.5, 0.999),
batch 1, 256 px crops.  Deviation: the reference fed VGG BGR images in [-1, 1]; the
perceptual loss here feeds what the ImageNet weights expect (RGB in [0, 1] with the
ImageNet normalization).  The VGG is frozen, never checkpointed and never optimized;
its weights come from ``model.vgg_weights``, ``$I2I_VGG_WEIGHTS`` or torchvision's
cache, else are downloaded there once (:mod:`i2i.pretrained`; ``vgg_w: 0`` trains without it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List

import torch
import torch.nn.functional as F

from ..config import ModelSettings, rule
from ..errors import ConfigError
from ..losses import PerceptualLoss
from ..registry import MODELS
from .base import scalar_logs
from .pix2pix import Pix2Pix

ADAM = {"type": "adam", "lr": 1e-3, "betas": [0.5, 0.999], "schedule": "constant"}


@dataclass
class DehazeGANSettings(ModelSettings):
    name: str = "dehazegan"
    gan_w: float = rule(2.0, ge=0)  #: adversarial term
    l1_w: float = rule(100.0, ge=0)  #: L1(G(hazy), clear)
    vgg_w: float = rule(10.0, ge=0)  #: perceptual term (0 = no VGG needed)
    vgg_layers: List[str] = field(default_factory=lambda: ["pool4"])  #: VGG19 layers compared
    vgg_weights: str = ""  #: VGG19 weights file ('' = $I2I_VGG_WEIGHTS, then the torch hub cache, then a download; 'random' for tests)


@MODELS.register("dehazegan")
class DehazeGAN(Pix2Pix):
    """pix2pix's networks, D terms and inference, with DehazeGAN's weights and the perceptual term."""

    Settings = DehazeGANSettings
    defaults = {
        "nets": {
            "G": {"name": "tiramisu"},
            "D": {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "batch"},
        },
        "losses": {"gan": {"name": "vanilla"}},
        "optim": {"G": ADAM, "D": ADAM},
        "data": {"kind": "paired", "load_size": 286, "crop_size": 256},
    }

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._perceptual: PerceptualLoss | None = None  # built on first use: inference needs no VGG

    @classmethod
    def check_config(cls, cfg, check_paths: bool = True) -> None:
        from ..losses.perceptual import find_vgg_weights, layer_index

        s = cfg.model
        for i, layer in enumerate(s.vgg_layers):
            try:
                layer_index(layer)
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"model.vgg_layers[{i}]: {exc}") from None
        if check_paths and s.vgg_w > 0 and s.vgg_weights != "random":
            find_vgg_weights(s.vgg_weights or None)  # WeightsError: which file to put where

    @property
    def perceptual(self) -> PerceptualLoss | None:
        s = self.settings
        if self._perceptual is None and s.vgg_w > 0:
            vgg = PerceptualLoss(s.vgg_layers, weights=s.vgg_weights or None)
            object.__setattr__(self, "_perceptual", vgg.to(next(self.G.parameters()).device))
        return self._perceptual

    def phases(self):
        """pix2pix's phases; with ``gan_w: 0`` only G's (D is neither trained nor run)."""
        phases = super().phases()
        if self.settings.gan_w == 0:
            phases = [replace(p, frozen=(), every=1) for p in phases if p.group != "D"]
        return phases

    def g_loss(self, batch, out):
        s, hazy, clear, fake = self.settings, batch["A"], batch["B"], out["fake_B"]
        l1 = F.l1_loss(fake, clear)
        loss, logs = s.l1_w * l1, dict(G_L1=l1)
        if s.gan_w > 0:
            adv = self.g_adv_loss(self.D, torch.cat([hazy, clear], 1), torch.cat([hazy, fake], 1))
            loss, logs["G_gan"] = loss + s.gan_w * adv, adv
        if self.perceptual is not None:
            vgg = self.perceptual(fake, clear)
            loss = loss + s.vgg_w * vgg
            logs["G_vgg"] = vgg
        return loss, scalar_logs(**logs)

