"""pix2pix (Isola et al. 2017): conditional GAN with an L1 term, for paired data.

Defaults follow the paper and its reference code: U-Net 256 generator with
batch norm and dropout, 70x70 PatchGAN on the concatenated (A, B) pair,
vanilla GAN loss, lambda_L1 = 100, Adam(2e-4, 0.5, 0.999), 100 epochs at
constant lr then 100 of linear decay, no image pool; at test time batch norm
uses the test batch's statistics and dropout stays on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ModelSettings, rule
from ..nn import build_discriminator, build_generator
from ..registry import DISCRIMINATORS, GENERATORS, MODELS
from .adversarial import AdversarialModel
from .base import scalar_logs

ADAM = {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear"}


@dataclass
class Pix2PixSettings(ModelSettings):
    name: str = "pix2pix"
    lambda_l1: float = rule(100.0, ge=0)  #: weight of L1(G(A), B)
    #: inference normalizes with the test batch's statistics, dropout on (as in the paper)
    test_batch_stats: bool = True


@MODELS.register("pix2pix")
class Pix2Pix(AdversarialModel):
    Settings = Pix2PixSettings
    roles = {"G": GENERATORS, "D": DISCRIMINATORS}
    defaults = {
        "nets": {
            "G": {"name": "unet_256", "ngf": 64, "norm": "batch", "dropout": True},
            "D": {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "batch"},
        },
        "losses": {"gan": {"name": "vanilla"}},
        "optim": {"G": ADAM, "D": ADAM},
        "data": {"kind": "aligned"},
    }
    phase_order = ("D", "G")

    @classmethod
    def upgrade_settings(cls, fmt, model, losses):
        if fmt < 2:  # i2i 0.1: the L1 weight in losses, and a pool size pix2pix never used
            model.pop("pool_size", None)
            if "l1" in losses:
                model["lambda_l1"] = losses["l1"]
        return model

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        c_in, c_out = cfg.data.in_channels, cfg.data.out_channels
        self.G = build_generator(cfg.nets["G"], c_in, c_out)
        self.D = build_discriminator(cfg.nets["D"], c_in + c_out)

    def generators(self):
        return [self.G]

    def discriminators(self):
        return [self.D]

    def generator(self, direction="AtoB"):
        self.check_direction(direction)
        return self.G

    def generate(self, batch):
        return {"fake_B": self.G(batch["A"])}

    def d_terms(self, batch, out):
        real_A = batch["A"]
        return [("D", self.D, torch.cat([real_A, batch["B"]], 1), torch.cat([real_A, out["fake_B"].detach()], 1))]

    def g_loss(self, batch, out):
        real_A, real_B, fake_B = batch["A"], batch["B"], out["fake_B"]
        adv = self.g_adv_loss(self.D, torch.cat([real_A, real_B], 1), torch.cat([real_A, fake_B], 1))
        l1 = F.l1_loss(fake_B, real_B)
        return adv + self.settings.lambda_l1 * l1, scalar_logs(G_gan=adv, G_L1=l1)

    def visuals(self, batch, out):
        return [batch["A"], out["fake_B"], batch["B"]]
