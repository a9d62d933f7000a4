"""UNIT (Liu, Breuel and Kautz, NIPS 2017): unpaired translation through a shared latent space.

Two VAEs (the ``unit`` generator: encoders and decoders of domains A and B whose
high-level layers are the same modules) and two multi-scale discriminators.  One
iteration, as in the authors' trainer (D step, then G step):

* h_a = E_a(a), h_b = E_b(b) are the latent means; the decoders see h + n, n ~ N(0, I);
* reconstruction a' = G_a(h_a + n), translations ab = G_b(h_a + n), ba = G_a(h_b + n);
* cycle: aba = G_a(E_b(ab) + n), bab = G_b(E_a(ba) + n);
* G minimizes ``gan_w * (adv(ba) + adv(ab)) + recon_x_w * |a' - a|_1 + recon_kl_w * KL(h_a)
  + recon_x_cyc_w * |aba - a|_1 + recon_kl_cyc_w * KL(E_b(ab))`` (and the same for b),
  KL(h) = mean(h^2), plus ``vgg_w * |VGG(ba) - VGG(b)|^2`` when ``vgg_w > 0`` (off by default);
* D_a judges a against ba, D_b judges b against ab.

Defaults from the authors' configs: LSGAN without the 1/2 (any objective of
:mod:`i2i.losses` works), weights 1 / 10 / 0.01 / 10 / 0.01, discriminators of 3
scales x 4 stride-2 layers without norm, Adam(1e-4, 0.5, 0.999) with weight decay
1e-4 and the lr halved every 100k iterations, Kaiming init for the generators and
N(0, 0.02) for the discriminators, batch 1.  The authors sum the adversarial
losses over the scales; the loss module averages them, so both adversarial terms
are multiplied by the number of scales here, and D's loss is not halved.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn.functional as F

from ..config import ModelSettings, rule
from ..errors import ConfigError
from ..losses import PerceptualLoss, kl_unit_variance
from ..nn import build_discriminator, build_generator
from ..registry import DISCRIMINATORS, GENERATORS, MODELS
from .adversarial import AdversarialModel
from .base import scalar_logs

ADAM = {"type": "adam", "lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4,
        "schedule": "step", "unit": "iter", "step_size": 100_000, "gamma": 0.5}


@dataclass
class UNITSettings(ModelSettings):
    name: str = "unit"
    gan_w: float = rule(1.0, ge=0)  #: adversarial terms
    recon_x_w: float = rule(10.0, ge=0)  #: L1 of the within-domain reconstruction
    recon_kl_w: float = rule(0.01, ge=0)  #: KL of the latent
    recon_x_cyc_w: float = rule(10.0, ge=0)  #: L1 of the cycle reconstruction
    recon_kl_cyc_w: float = rule(0.01, ge=0)  #: KL of the cycle's latent
    #: VGG19 perceptual distance between each translation and its source (content kept); 0 = off
    vgg_w: float = rule(0.0, ge=0)
    vgg_layers: List[str] = field(default_factory=lambda: ["relu5_3"])  #: VGG19 layers compared
    vgg_weights: str = ""  #: VGG19 weights file ('' = $I2I_VGG_WEIGHTS, then the torch hub cache, then a download; 'random' for tests)


@MODELS.register("unit")
class UNIT(AdversarialModel):
    Settings = UNITSettings
    roles = {"G": GENERATORS, "D": DISCRIMINATORS}
    defaults = {
        "nets": {
            "G": {"name": "unit", "dim": 64, "n_down": 2, "n_res": 4, "n_shared_enc": 1, "n_shared_dec": 1,
                  "init": "kaiming"},
            "D": {"name": "multiscale", "design": "strided", "ndf": 64, "n_layers": 4, "norm": "none",
                  "num_scales": 3, "init": "normal", "init_gain": 0.02},
        },
        "losses": {"gan": {"name": "lsgan", "half": False}},
        "optim": {"G": ADAM, "D": ADAM},
        "data": {"kind": "unpaired", "load_size": 256, "crop_size": 256},
        "train": {"epochs": 100, "epochs_decay": 0},
    }
    phase_order = ("D", "G")
    directions = ("AtoB", "BtoA")
    d_loss_weight = 1.0

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        c_a, c_b = cfg.data.in_channels, cfg.data.out_channels
        self.G = build_generator(cfg.nets["G"], c_a, c_b)
        if not all(hasattr(self.G, m) for m in ("encode", "decode")):
            raise ConfigError(f"nets.G.name: unit needs a coupled VAE generator (unit), not {cfg.nets['G'].name!r}")
        self.D_A = build_discriminator(cfg.nets["D"], c_a)  # real A vs G_a(h_b + n)
        self.D_B = build_discriminator(cfg.nets["D"], c_b)  # real B vs G_b(h_a + n)
        scales = len(getattr(self.D_A, "scales", [None]))
        self.d_loss_weight = float(scales)  # the authors sum over scales; the loss module averages
        self.adv_scale = float(scales)
        self._perceptual: PerceptualLoss | None = None  # built on first use: inference needs no VGG

    @classmethod
    def check_config(cls, cfg, check_paths: bool = True) -> None:
        from ..losses.perceptual import find_vgg_weights

        if check_paths and cfg.model.vgg_w > 0 and cfg.model.vgg_weights != "random":
            find_vgg_weights(cfg.model.vgg_weights or None)

    @property
    def perceptual(self) -> PerceptualLoss:
        if self._perceptual is None:
            s = self.settings
            vgg = PerceptualLoss(s.vgg_layers, criterion="mse", weights=s.vgg_weights or None)
            object.__setattr__(self, "_perceptual", vgg.to(next(self.G.parameters()).device))
        return self._perceptual

    def generators(self):
        return [self.G]

    def discriminators(self):
        return [self.D_A, self.D_B]

    def generator(self, direction="AtoB"):
        self.check_direction(direction)
        return self.G.translator(*(("A", "B") if direction == "AtoB" else ("B", "A")))

    @staticmethod
    def _noisy(h: torch.Tensor) -> torch.Tensor:
        return h + torch.randn_like(h)

    def generate(self, batch):
        G, a, b = self.G, batch["A"], batch["B"]
        h_a, h_b = G.encode(a, "A"), G.encode(b, "B")
        z_a, z_b = self._noisy(h_a), self._noisy(h_b)
        out = {"h_a": h_a, "h_b": h_b, "rec_A": G.decode(z_a, "A"), "rec_B": G.decode(z_b, "B"),
               "fake_A": G.decode(z_b, "A"), "fake_B": G.decode(z_a, "B")}
        if torch.is_grad_enabled():  # the cycle is needed by the G phase only
            h_ab, h_ba = G.encode(out["fake_B"], "B"), G.encode(out["fake_A"], "A")
            out.update(h_ab=h_ab, h_ba=h_ba, cyc_A=G.decode(self._noisy(h_ab), "A"),
                       cyc_B=G.decode(self._noisy(h_ba), "B"))
        return out

    def d_terms(self, batch, out):
        return [("D_A", self.D_A, batch["A"], out["fake_A"].detach()),
                ("D_B", self.D_B, batch["B"], out["fake_B"].detach())]

    def g_loss(self, batch, out):
        s, a, b = self.settings, batch["A"], batch["B"]
        adv_a = self.adv_scale * self.g_adv_loss(self.D_A, a, out["fake_A"])
        adv_b = self.adv_scale * self.g_adv_loss(self.D_B, b, out["fake_B"])
        rec_a, rec_b = F.l1_loss(out["rec_A"], a), F.l1_loss(out["rec_B"], b)
        kl_a, kl_b = kl_unit_variance(out["h_a"]), kl_unit_variance(out["h_b"])
        cyc_a, cyc_b = F.l1_loss(out["cyc_A"], a), F.l1_loss(out["cyc_B"], b)
        kl_cyc_a, kl_cyc_b = kl_unit_variance(out["h_ab"]), kl_unit_variance(out["h_ba"])
        loss = (s.gan_w * (adv_a + adv_b) + s.recon_x_w * (rec_a + rec_b) + s.recon_kl_w * (kl_a + kl_b)
                + s.recon_x_cyc_w * (cyc_a + cyc_b) + s.recon_kl_cyc_w * (kl_cyc_a + kl_cyc_b))
        logs = dict(G_A=adv_a, G_B=adv_b, rec_A=rec_a, rec_B=rec_b, kl_A=kl_a, kl_B=kl_b,
                    cycle_A=cyc_a, cycle_B=cyc_b, kl_cyc_A=kl_cyc_a, kl_cyc_B=kl_cyc_b)
        if s.vgg_w > 0:  # the authors compare instance-normalized features; this is the plain MSE of them
            vgg_a, vgg_b = self.perceptual(out["fake_A"], b), self.perceptual(out["fake_B"], a)
            loss = loss + s.vgg_w * (vgg_a + vgg_b)
            logs.update(vgg_A=vgg_a, vgg_B=vgg_b)
        return loss, scalar_logs(**logs)

    def visuals(self, batch, out):
        return [batch["A"], out["fake_B"], out["rec_A"], batch["B"], out["fake_A"], out["rec_B"]]
