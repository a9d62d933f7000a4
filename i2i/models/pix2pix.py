"""pix2pix (Isola et al. 2017): conditional GAN with an L1 term, for paired data.

Defaults follow the paper and its reference code: U-Net 256 generator with
batch norm and dropout, 70x70 PatchGAN on the concatenated (A, B) pair,
vanilla GAN loss, lambda_L1 = 100, Adam(2e-4, 0.5, 0.999), no image pool; at
test time batch norm uses the test batch's statistics and dropout stays on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn import build_discriminator, build_generator
from ..registry import MODELS
from .base import TranslationModel, scalar_logs


@MODELS.register("pix2pix")
class Pix2Pix(TranslationModel):
    defaults = {
        "model": {"pool_size": 0, "test_batch_stats": True},
        "nets": {
            "generator": {"name": "unet_256", "ngf": 64, "norm": "batch", "dropout": True},
            "discriminator": {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "batch"},
        },
        "losses": {"gan": {"name": "vanilla"}, "l1": 100.0},
        "data": {"kind": "aligned"},
    }
    phases = ("D", "G")

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        c_in, c_out = cfg.data.in_channels, cfg.data.out_channels
        self.G = build_generator(cfg.nets.generator, c_in, c_out)
        self.D = build_discriminator(cfg.nets.discriminator, c_in + c_out)
        self.lambda_l1 = cfg.losses.l1

    def param_groups(self):
        return {"G": list(self.G.parameters()), "D": list(self.D.parameters())}

    def discriminators(self):
        return [self.D]

    def generator(self, direction="AtoB"):
        if direction != "AtoB":
            raise ValueError("pix2pix translates in its trained direction only (AtoB)")
        return self.G

    def generate(self, batch):
        return {"fake_B": self.G(batch["A"])}

    def loss(self, phase, batch, out):
        real_A, real_B, fake_B = batch["A"], batch["B"], out["fake_B"]
        real_in = torch.cat([real_A, real_B], 1)
        if phase == "D":
            loss = self.d_loss(self.D, real_in, torch.cat([real_A, fake_B.detach()], 1))
            return loss, scalar_logs(D=loss)
        adv = self.g_adv_loss(self.D, real_in, torch.cat([real_A, fake_B], 1))
        l1 = F.l1_loss(fake_B, real_B)
        return adv + self.lambda_l1 * l1, scalar_logs(G_gan=adv, G_L1=l1)

    def visuals(self, batch, out):
        return [batch["A"], out["fake_B"], batch["B"]]
