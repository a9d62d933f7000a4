"""CUT and FastCUT (Park, Efros, Zhang & Zhu, ECCV 2020): contrastive unpaired translation.

One generator G (A -> B), one discriminator D, no cycle: besides the GAN loss, a PatchNCE loss
(:class:`~i2i.losses.PatchNCELoss`) keeps each patch of G(x) close to the patch of x at the same place,
both seen through G's own encoder (its feature taps, :mod:`i2i.nn.taps`, at ``nce_layers``) and a
projection head F (``nets.F``, a network role of its own, stepped with G in the ``G`` group).  With
``nce_idt`` the same loss on G(y) and y, for y in B, plays the identity loss's part.

Defaults follow the authors' code (``--CUT_mode CUT``): lambda_GAN 1, lambda_NCE 1, NCE identity on,
nce_layers 0, 4, 8, 12, 16 of an antialiased ResNet-9 generator, an antialiased PatchGAN, 256 patches
per layer, temperature 0.07, a 2-layer MLP head of 256 units, Xavier init (gain 0.02) for G, D and F, LSGAN (plain MSE), no
image pool, Adam(2e-4, 0.5, 0.999), 200 epochs then 200 of linear decay.  ``model: fastcut`` is
``--CUT_mode FastCUT``: lambda_NCE 10, no NCE identity, flip equivariance, 150 + 50 epochs.

Flip equivariance (FastCUT): in half of the iterations (drawn from the step's generator, the same on
every process) the real images go through G mirrored, and the output's features are mirrored back
before they are compared with the input's, so G(flip(x)) must match flip(G(x)) patch by patch.  The
decision stays on the device (``torch.where``): the host never waits for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch

from ..config import ModelSettings, merge, rule
from ..errors import ConfigError
from ..losses import PatchNCELoss
from ..nn import build_discriminator, build_generator, build_head
from ..nn.taps import offers_taps
from ..registry import DISCRIMINATORS, GENERATORS, HEADS, MODELS
from .adversarial import AdversarialModel
from .base import scalar_logs
from .pix2pix import ADAM


@dataclass
class CUTSettings(ModelSettings):
    name: str = "cut"
    lambda_gan: float = rule(1.0, ge=0)  #: weight of G's GAN loss
    lambda_nce: float = rule(1.0, ge=0)  #: weight of the PatchNCE loss (0: off, and F is not trained)
    nce_idt: bool = True  #: PatchNCE between B images and G's output for them too (averaged with the A term)
    nce_layers: List[int] = rule(factory=lambda: [0, 4, 8, 12, 16], ge=0)  #: G's feature taps compared
    num_patches: int = rule(256, ge=1)  #: positions drawn per layer
    nce_t: float = rule(0.07, gt=0)  #: temperature of the PatchNCE logits
    flip_equivariance: bool = False  #: mirror G's input in half of the iterations (FastCUT)


@dataclass
class FastCUTSettings(CUTSettings):
    name: str = "fastcut"
    lambda_nce: float = rule(10.0, ge=0)
    nce_idt: bool = False
    flip_equivariance: bool = True


XAVIER = {"init": "xavier", "init_gain": 0.02}


@MODELS.register("cut")
class CUT(AdversarialModel):
    Settings = CUTSettings
    roles = {"G": GENERATORS, "D": DISCRIMINATORS, "F": HEADS}
    defaults = {
        "nets": {
            "G": {"name": "resnet_9blocks", "ngf": 64, "norm": "instance", "dropout": False, "antialias": True,
                  **XAVIER},
            "D": {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "instance", "antialias": True, **XAVIER},
            "F": {"name": "mlp", "units": 256, **XAVIER},
        },
        "losses": {"gan": {"name": "lsgan", "half": False}},
        "optim": {"G": ADAM, "D": ADAM},
        "data": {"kind": "unpaired"},
        "train": {"epochs": 200, "epochs_decay": 200},
    }

    @classmethod
    def check_config(cls, cfg, check_paths: bool = True) -> None:
        if cfg.model.lambda_gan == 0 and cfg.model.lambda_nce == 0:
            raise ConfigError("model.lambda_nce: with lambda_gan 0 too, G would be trained by no loss")
        if cfg.data.in_channels != cfg.data.out_channels:
            raise ConfigError(f"data.out_channels: {cfg.model.name} encodes its outputs with its own generator, "
                              f"which takes {cfg.data.in_channels}-channel images; set it to {cfg.data.in_channels}")

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        s = self.settings
        c = cfg.data.in_channels
        self.G = build_generator(cfg.nets["G"], c, c)
        if not offers_taps(self.G):
            raise ConfigError(f"nets.G.name: {s.name} needs a generator with feature taps (resnet, resnet_6blocks, "
                              f"resnet_9blocks), not {cfg.nets['G'].name!r}")
        try:
            channels = self.G.tap_channels(s.nce_layers)
        except ValueError as exc:
            raise ConfigError(f"model.nce_layers: {exc}") from None
        self.F = build_head(cfg.nets["F"], channels)  # built now: optimizers, EMA and checkpoints see it
        self.D = build_discriminator(cfg.nets["D"], c)
        self.nce = PatchNCELoss(s.nce_t, s.num_patches)
        self.step_rng: torch.Generator | None = None

    def generators(self):
        return [self.G, self.F]

    def discriminators(self):
        return [self.D]

    def generator(self, direction="AtoB"):
        self.check_direction(direction)
        return self.G

    def start_step(self, generator: torch.Generator) -> None:
        super().start_step(generator)
        self.step_rng = generator  # patch positions and FastCUT's flips, the same on every process

    def generate(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        real = torch.cat([real_A, real_B]) if self.settings.nce_idt else real_A
        flip = None
        if self.settings.flip_equivariance:
            flip = torch.rand((), generator=self.step_rng, device=real.device) < 0.5
            real = torch.where(flip, real.flip(3), real)
        fake = self.G(real)
        out = {"fake_B": fake[: real_A.shape[0]]}
        if self.settings.nce_idt:
            out["idt_B"] = fake[real_A.shape[0]:]
        if flip is not None:
            out["flip"] = flip
        return out

    def d_terms(self, batch, out):
        return [("D", self.D, batch["B"], out["fake_B"].detach())]

    def nce_loss(self, src: torch.Tensor, out: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
        """PatchNCE between G's features of its output ``out`` and those of its input ``src``."""
        layers = self.settings.nce_layers
        feat_out = self.G.taps(out, layers)
        if flip is not None:  # the output came from the mirrored input: mirror its features back
            feat_out = [torch.where(flip, f.flip(3), f) for f in feat_out]
        with torch.no_grad():  # the input's features are the keys, constants of the loss
            feat_in = self.G.taps(src, layers)
        return self.nce(feat_out, feat_in, self.F, self.step_rng)

    def g_loss(self, batch, out):
        s = self.settings
        loss, logs = 0.0, {}
        if s.lambda_gan > 0:
            adv = self.g_adv_loss(self.D, batch["B"], out["fake_B"])
            loss, logs["G_GAN"] = s.lambda_gan * adv, adv
        if s.lambda_nce > 0:
            nce = self.nce_loss(batch["A"], out["fake_B"], out.get("flip"))
            logs["NCE"] = nce
            if s.nce_idt:
                logs["NCE_Y"] = self.nce_loss(batch["B"], out["idt_B"], out.get("flip"))
                nce = (nce + logs["NCE_Y"]) / 2
            loss = loss + s.lambda_nce * nce
        return loss, scalar_logs(**logs)

    def visuals(self, batch, out):
        shown = [out["fake_B"]] + ([out["idt_B"]] if "idt_B" in out else [])
        if "flip" in out:  # as the inputs are shown: unmirrored
            shown = [torch.where(out["flip"], x.flip(3), x) for x in shown]
        return [batch["A"], shown[0], batch["B"], *shown[1:]]


@MODELS.register("fastcut")
class FastCUT(CUT):
    Settings = FastCUTSettings
    defaults = merge(CUT.defaults, {"train": {"epochs": 150, "epochs_decay": 50}})
