"""CoGAN (Liu & Tuzel, "Coupled Generative Adversarial Networks", NIPS 2016): a joint
distribution of two domains learnt from unpaired samples of each.

One noise vector z feeds two generators whose first layers are shared (one
module, :class:`~i2i.nn.cogan.CoupledGenerator`): the same z gives an image of
domain A and the corresponding image of domain B.  Two discriminators, one per
domain, share their last layers (:class:`~i2i.nn.cogan.CoupledDiscriminator`).
Nothing ties a real A image to a real B image during training: the weight
sharing alone makes the pairs correspond.

Defaults follow the authors' code: DCGAN-style networks at 64 x 64, latent 100,
z ~ N(0, I), the standard (non-saturating) GAN loss with D's real and fake terms
summed, not halved, Adam(2e-4, 0.5, 0.999) with weight decay 5e-4 and a
constant learning rate, batch 64, one D step then one G step.

Translation, as the paper proposes: for an image x of domain A, find
``z* = argmin_z |G_A(z) - x|^2`` by Adam on z (``inversion_steps`` steps from
``inversion_restarts`` random starts, the best kept), then render ``G_B(z*)``.
It costs an optimization per image and is only as good as G_A's fit of x
(:attr:`CoGAN.last_inversion_error`, reported by ``translation_report``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..config import ModelSettings, rule
from ..errors import ConfigError, DataError
from ..nn import build_discriminator, build_generator
from ..registry import DISCRIMINATORS, GENERATORS, MODELS
from .adversarial import AdversarialModel
from .base import preserved_buffers, scalar_logs

ADAM = {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 5e-4, "schedule": "constant"}
N_VISUALS = 8  #: samples drawn from the fixed z shown in training grids


@dataclass
class CoGANSettings(ModelSettings):
    name: str = "cogan"
    inversion_steps: int = rule(300, ge=1)  #: Adam steps on z per translation
    inversion_restarts: int = rule(4, ge=1)  #: random starts of z; the best fit is kept
    inversion_lr: float = rule(0.05, gt=0)  #: Adam learning rate on z
    inversion_seed: int = 0  #: seed of the random starts (translation is repeatable)
    visual_seed: int = 0  #: seed of the fixed z of the training sample grids


def _net_param(cfg, registry, key: str):
    """Value of builder keyword ``key`` of a network section (its builder's default if not set)."""
    if key in cfg.params:
        return cfg.params[key]
    param = registry.parameters(cfg.name).get(key) if cfg.name in registry else None
    return None if param is None or param.default is param.empty else param.default


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking); ``x`` itself when it already has ``size``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def per_image_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of each image pair, on [-1, 1] pixels: shape (N,)."""
    return (x - y).pow(2).flatten(1).mean(1)


@MODELS.register("cogan")
class CoGAN(AdversarialModel):
    Settings = CoGANSettings
    roles = {"G": GENERATORS, "D": DISCRIMINATORS}
    defaults = {
        "nets": {"G": {"name": "cogan_generator"}, "D": {"name": "cogan_discriminator"}},
        "losses": {"gan": {"name": "vanilla"}},
        "optim": {"G": ADAM, "D": ADAM},
        "data": {"kind": "unpaired", "load_size": 64, "crop_size": 64, "batch_size": 64},
    }
    phase_order = ("D", "G")
    directions = ("AtoB", "BtoA")
    sample_domains = ("A", "B")  # one z, an image of each domain
    exports_images = False  # its generators take latent vectors; translation inverts them
    d_loss_weight = 1.0  # the authors' code sums D's real and fake terms

    @classmethod
    def check_config(cls, cfg, check_paths: bool = True) -> None:
        g_size = _net_param(cfg.nets["G"], GENERATORS, "size")
        d_size = _net_param(cfg.nets["D"], DISCRIMINATORS, "size")
        if g_size is not None and d_size is not None and g_size != d_size:
            raise ConfigError(f"nets.D.size: {d_size} differs from nets.G.size {g_size}; both networks work at one "
                              "image size")
        if g_size is not None and cfg.data.preprocess != "none" and cfg.data.crop_size != g_size:
            raise ConfigError(f"data.crop_size: {cfg.data.crop_size} differs from nets.G.size {g_size}; the "
                              "discriminators compare real and generated images of the same size")
        if cfg.model.test_batch_stats:
            raise ConfigError("model.test_batch_stats: cogan translates by latent inversion, with its generators "
                              "in eval mode; leave it off")

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        c_a, c_b = cfg.data.in_channels, cfg.data.out_channels
        self.G = build_generator(cfg.nets["G"], c_a, c_b)
        d_cfg = cfg.nets["D"]
        if "out_channels" in DISCRIMINATORS.parameters(d_cfg.name):
            d_cfg = replace(d_cfg, params={**d_cfg.params, "out_channels": c_b})
        self.D = build_discriminator(d_cfg, c_a)
        for role, net in (("G", self.G), ("D", self.D)):
            if not callable(getattr(net, "branch", None)):
                raise ConfigError(f"nets.{role}.name: cogan needs a coupled network with a branch(domain) method "
                                  f"(cogan_generator, cogan_discriminator), not {cfg.nets[role].name!r}")
        seed = torch.Generator().manual_seed(self.settings.visual_seed)
        self.register_buffer("fixed_z", torch.randn(N_VISUALS, self.G.latent, generator=seed), persistent=False)
        #: mean reconstruction error (MSE on [-1, 1] pixels) of the last ``translate`` call's inversions
        self.last_inversion_error: float | None = None

    # ------------------------------------------------------------------ training
    def generators(self):
        return [self.G]

    def discriminators(self):
        return [self.D]

    def generate(self, batch):
        real_A = batch["A"]
        size = (self.G.size, self.G.size)
        for side in ("A", "B"):
            if tuple(batch[side].shape[-2:]) != size:
                raise DataError(f"cogan: {side} images are {tuple(batch[side].shape[-2:])} px, the networks work at "
                                f"{size}; set data.preprocess and data.crop_size to give {size[0]} x {size[1]} images")
        z = torch.randn(real_A.shape[0], self.G.latent, device=real_A.device)
        fake_A, fake_B = self.G(z)
        return {"fake_A": fake_A, "fake_B": fake_B}

    def d_terms(self, batch, out):
        return [("D_A", self.D.branch("A"), batch["A"], out["fake_A"].detach()),
                ("D_B", self.D.branch("B"), batch["B"], out["fake_B"].detach())]

    def g_loss(self, batch, out):
        adv_A = self.g_adv_loss(self.D.branch("A"), batch["A"], out["fake_A"])
        adv_B = self.g_adv_loss(self.D.branch("B"), batch["B"], out["fake_B"])
        return adv_A + adv_B, scalar_logs(G_A=adv_A, G_B=adv_B)

    def visuals(self, batch, out):
        """Pairs generated from a fixed z: how one set of pairs evolves over training."""
        return self.render(self.fixed_z)

    # ------------------------------------------------------------------ inference
    def generator(self, direction="AtoB"):
        self.check_direction(direction)
        return self.G.branch(direction[-1])

    def size_multiple(self, direction="AtoB") -> int:
        return 1  # translate resizes to the generator's size and back

    @torch.no_grad()
    def render(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[images A, images B] of latent vectors ``z`` (eval mode, buffers untouched)."""
        was_training = self.G.training
        self.G.eval()
        try:
            with preserved_buffers(self.G):
                return list(self.G(z.to(self.fixed_z.device)))
        finally:
            self.G.train(was_training)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """[images A, images B] of ``n`` pairs, each pair from one z ~ N(0, I)."""
        device = generator.device if generator is not None else self.fixed_z.device
        return self.render(torch.randn(n, self.G.latent, generator=generator, device=device))

    def invert(self, x: torch.Tensor, domain: str, steps: int | None = None, restarts: int | None = None,
               lr: float | None = None, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z*, error)``: the latent vectors whose ``domain`` images fit ``x`` best, and that fit
        (per-image MSE on [-1, 1] pixels).  ``x`` is N x C x size x size.

        Adam on z alone (the weights get no gradient), ``steps`` steps from each of
        ``restarts`` starts drawn from N(0, I) with ``seed``; the generator runs in eval mode
        and its buffers are restored, so nothing of the training state changes.
        """
        s = self.settings
        steps, restarts = steps or s.inversion_steps, restarts or s.inversion_restarts
        lr = lr or s.inversion_lr
        seed = s.inversion_seed if seed is None else seed
        gen, n = self.G.branch(domain), x.shape[0]
        start = torch.randn(restarts * n, self.G.latent, generator=torch.Generator().manual_seed(seed))
        target = x.detach().repeat(restarts, 1, 1, 1)
        was_training = self.G.training
        self.G.eval()
        try:
            with preserved_buffers(self.G), torch.enable_grad():
                z = start.to(x.device).requires_grad_(True)
                opt = torch.optim.Adam([z], lr=lr)
                for _ in range(steps):
                    # the sum keeps each image's gradient its own (eval-mode batch norm mixes nothing)
                    (z.grad,) = torch.autograd.grad(per_image_mse(gen(z), target).sum(), z)
                    opt.step()
                with torch.no_grad():
                    error = per_image_mse(gen(z), target).view(restarts, n)
        finally:
            self.G.train(was_training)
        best = error.argmin(0)
        pick = torch.arange(n, device=best.device)
        return z.detach().view(restarts, n, -1)[best, pick], error[best, pick]

    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """``x`` (any size) of the source domain, rendered in the other one through the z that
        reconstructs it best; resized to the networks' size and the result back to ``x``'s."""
        self.check_direction(direction)
        src, dst = direction[0], direction[-1]
        if x.shape[1] != self.channels(direction)[0]:
            raise ValueError(f"cogan {direction}: expected {self.channels(direction)[0]}-channel images, "
                             f"got {x.shape[1]}")
        size = (self.G.size, self.G.size)
        z, error = self.invert(resize(x, size), src)
        self.last_inversion_error = float(error.mean())
        out = self.render(z)["AB".index(dst)]
        return resize(out, tuple(x.shape[-2:]))

    def translation_report(self) -> dict[str, float]:
        error = self.last_inversion_error
        return {} if error is None else {"reconstruction error of the latent inversion (MSE, pixels in [-1, 1])": error}
