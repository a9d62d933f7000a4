"""CycleGAN (Zhu et al. 2017): two generators and two discriminators, unpaired data.

Defaults follow the paper and its reference code: ResNet 9-block generators
with instance norm, 70x70 PatchGANs, least-squares GAN loss (MSE form, without
the 1/2 factor), lambda_A = lambda_B = 10, identity weight 0.5 (times lambda),
an image pool of 50 past fakes per discriminator, Adam(2e-4, 0.5, 0.999),
100 epochs at constant lr then 100 epochs of linear decay to 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn import build_discriminator, build_generator
from ..registry import MODELS
from .base import TranslationModel, scalar_logs
from .image_pool import ImagePool


@MODELS.register("cyclegan")
class CycleGAN(TranslationModel):
    defaults = {
        "model": {"pool_size": 50},
        "nets": {
            "generator": {"name": "resnet_9blocks", "ngf": 64, "norm": "instance", "dropout": False},
            "discriminator": {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "instance"},
        },
        "losses": {"gan": {"name": "lsgan", "half": False}, "cycle": 10.0, "identity": 0.5},
        "data": {"kind": "unpaired"},
        "train": {"epochs": 100, "epochs_decay": 100},
    }
    phases = ("G", "D")

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        c_a, c_b = cfg.data.in_channels, cfg.data.out_channels
        self.G_A = build_generator(cfg.nets.generator, c_a, c_b)  # A -> B
        self.G_B = build_generator(cfg.nets.generator, c_b, c_a)  # B -> A
        self.D_A = build_discriminator(cfg.nets.discriminator, c_b)  # real B vs G_A(A)
        self.D_B = build_discriminator(cfg.nets.discriminator, c_a)  # real A vs G_B(B)
        self.pool_B = ImagePool(cfg.model.pool_size)  # past G_A(A), shown to D_A
        self.pool_A = ImagePool(cfg.model.pool_size)  # past G_B(B), shown to D_B
        self.lambda_cycle = cfg.losses.cycle
        self.lambda_idt = cfg.losses.identity * cfg.losses.cycle
        if self.lambda_idt > 0 and c_a != c_b:
            raise ValueError("the identity loss needs as many A channels as B channels; set losses.identity: 0")

    def param_groups(self):
        return {
            "G": [*self.G_A.parameters(), *self.G_B.parameters()],
            "D": [*self.D_A.parameters(), *self.D_B.parameters()],
        }

    def discriminators(self):
        return [self.D_A, self.D_B]

    def generator(self, direction="AtoB"):
        return {"AtoB": self.G_A, "BtoA": self.G_B}[direction]

    def generate(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self.G_A(real_A)
        fake_A = self.G_B(real_B)
        return {"fake_B": fake_B, "rec_A": self.G_B(fake_B), "fake_A": fake_A, "rec_B": self.G_A(fake_A)}

    def loss(self, phase, batch, out):
        real_A, real_B = batch["A"], batch["B"]
        if phase == "D":
            loss_A = self.d_loss(self.D_A, real_B, self.pool_B.query(out["fake_B"]))
            loss_B = self.d_loss(self.D_B, real_A, self.pool_A.query(out["fake_A"]))
            return loss_A + loss_B, scalar_logs(D_A=loss_A, D_B=loss_B)
        adv_A = self.g_adv_loss(self.D_A, real_B, out["fake_B"])
        adv_B = self.g_adv_loss(self.D_B, real_A, out["fake_A"])
        cyc_A = F.l1_loss(out["rec_A"], real_A)
        cyc_B = F.l1_loss(out["rec_B"], real_B)
        loss = adv_A + adv_B + self.lambda_cycle * (cyc_A + cyc_B)
        logs = dict(G_A=adv_A, G_B=adv_B, cycle_A=cyc_A, cycle_B=cyc_B)
        if self.lambda_idt > 0:
            idt_A = F.l1_loss(self.G_A(real_B), real_B)
            idt_B = F.l1_loss(self.G_B(real_A), real_A)
            loss = loss + self.lambda_idt * (idt_A + idt_B)
            logs.update(idt_A=idt_A, idt_B=idt_B)
        return loss, scalar_logs(**logs)

    def visuals(self, batch, out):
        return [batch["A"], out["fake_B"], out["rec_A"], batch["B"], out["fake_A"], out["rec_B"]]
