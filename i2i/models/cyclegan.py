"""CycleGAN (Zhu et al. 2017): two generators and two discriminators, unpaired data.

Defaults follow the paper and its reference code: ResNet 9-block generators
with instance norm, 70x70 PatchGANs, least-squares GAN loss (MSE form, without
the 1/2 factor), lambda_A = lambda_B = 10, identity weight 0.5 (times lambda),
an image pool of 50 past fakes per discriminator, Adam(2e-4, 0.5, 0.999),
100 epochs at constant lr then 100 epochs of linear decay to 0.

The role ``G`` configures both generators (A -> B and B -> A), ``D`` both
discriminators; the optimizer groups ``G`` and ``D`` hold both of each.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ..config import ModelSettings, rule
from ..errors import ConfigError
from ..nn import build_discriminator, build_generator
from ..registry import DISCRIMINATORS, GENERATORS, MODELS
from .adversarial import AdversarialModel
from .base import scalar_logs
from .image_pool import ImagePool
from .pix2pix import ADAM


@dataclass
class CycleGANSettings(ModelSettings):
    name: str = "cyclegan"
    lambda_cycle: float = rule(10.0, ge=0)  #: weight of both cycle losses (lambda_A = lambda_B)
    lambda_identity: float = rule(0.5, ge=0)  #: identity loss weight, as a fraction of lambda_cycle
    pool_size: int = rule(50, ge=0)  #: past fakes shown to each D (0 = off)


@MODELS.register("cyclegan")
class CycleGAN(AdversarialModel):
    Settings = CycleGANSettings
    roles = {"G": GENERATORS, "D": DISCRIMINATORS}
    defaults = {
        "nets": {
            "G": {"name": "resnet_9blocks", "ngf": 64, "norm": "instance", "dropout": False},
            "D": {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "instance"},
        },
        "losses": {"gan": {"name": "lsgan", "half": False}},
        "optim": {"G": ADAM, "D": ADAM},
        "data": {"kind": "unpaired"},
        "train": {"epochs": 100, "epochs_decay": 100},
    }
    phase_order = ("G", "D")
    directions = ("AtoB", "BtoA")

    @classmethod
    def upgrade_settings(cls, fmt, model, losses):
        if fmt < 2:  # i2i 0.1 kept the cycle and identity weights in losses
            for old, new in (("cycle", "lambda_cycle"), ("identity", "lambda_identity")):
                if old in losses:
                    model[new] = losses[old]
        return model

    @classmethod
    def check_config(cls, cfg, check_paths: bool = True) -> None:
        if cfg.model.lambda_identity > 0 and cfg.data.in_channels != cfg.data.out_channels:
            raise ConfigError("model.lambda_identity: the identity loss needs as many A channels as B channels; "
                              "set it to 0")

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        s = self.settings
        c_a, c_b = cfg.data.in_channels, cfg.data.out_channels
        self.G_A = build_generator(cfg.nets["G"], c_a, c_b)  # A -> B
        self.G_B = build_generator(cfg.nets["G"], c_b, c_a)  # B -> A
        self.D_A = build_discriminator(cfg.nets["D"], c_b)  # real B vs G_A(A)
        self.D_B = build_discriminator(cfg.nets["D"], c_a)  # real A vs G_B(B)
        self.pool_B = ImagePool(s.pool_size)  # past G_A(A), shown to D_A
        self.pool_A = ImagePool(s.pool_size)  # past G_B(B), shown to D_B
        self.lambda_cycle = s.lambda_cycle
        self.lambda_idt = s.lambda_identity * s.lambda_cycle

    def generators(self):
        return [self.G_A, self.G_B]

    def discriminators(self):
        return [self.D_A, self.D_B]

    def generator(self, direction="AtoB"):
        self.check_direction(direction)
        return {"AtoB": self.G_A, "BtoA": self.G_B}[direction]

    def generate(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self.G_A(real_A)
        fake_A = self.G_B(real_B)
        return {"fake_B": fake_B, "rec_A": self.G_B(fake_B), "fake_A": fake_A, "rec_B": self.G_A(fake_A)}

    def d_terms(self, batch, out):
        return [("D_A", self.D_A, batch["B"], self.pool_B.query(out["fake_B"])),
                ("D_B", self.D_B, batch["A"], self.pool_A.query(out["fake_A"]))]

    def g_loss(self, batch, out):
        real_A, real_B = batch["A"], batch["B"]
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
