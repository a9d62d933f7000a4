"""A dehazing generator built on the atmospheric scattering model: the network refines
the dark-channel estimate of the transmission instead of painting the clear image.

For a hazy image ``I = J t + A (1 - t)`` (:mod:`i2i.data.haze`), the dark channel
prior (He et al. 2009) gives an airlight ``A`` and a first transmission
``t0 = 1 - omega dark(I / A)``.  A small CNN, run at ``1 / scale`` of the resolution
on ``(I, t0, dark(I))``, predicts a correction of ``logit(t0)`` and of ``A``; the
transmission is brought back to full resolution and refined by a guided filter with
the gray image as guide (He et al. 2010), and ``J = (I - A) / max(t, t_min) + A``.
The CNN's convolutions are group-normalized (``norm``), both corrections are bounded
(``logit(t)`` moves by at most ``t_bound``, ``A`` by at most 20 %) with bounds that
always pass some gradient back, and both are multiplied by learned gains that start at 0, so the untrained
network is the dark channel prior (its transmission taken at ``1 / scale`` of the
resolution, then guided-filtered with radius ``radius``), and training moves it only
where the data says so.  Fully convolutional, any size;
the image statistics (A) are per image, so tiles of one image may see different A.

With ``refine > 0`` a small full-resolution CNN of that width (dilated 3x3 convolutions, a
receptive field of 33 px) looks at ``(I, J, t)`` and adds a correction to ``J`` for what the
model cannot express (halos at depth edges, colour casts); its last layer starts at 0, so
the untrained network is still the dark channel prior.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import GENERATORS
from .dcp import dark_channel, estimate_airlight, gray, guided_filter


GRAD_FLOOR = 0.02  #: the least share of the gradient that a bound of the physics dehazer passes back


def _floor_gradient(y: torch.Tensor, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``y`` (a function of ``x`` with derivative ``slope``) whose derivative is at least :data:`GRAD_FLOOR`."""
    extra = (GRAD_FLOOR - slope).clamp(min=0).detach()
    return y + extra * (x - x.detach())


def leaky_sigmoid(x: torch.Tensor) -> torch.Tensor:
    y = torch.sigmoid(x)
    return _floor_gradient(y, x, y * (1 - y))


def leaky_tanh(x: torch.Tensor) -> torch.Tensor:
    y = torch.tanh(x)
    return _floor_gradient(y, x, 1 - y * y)


def leaky_clamp_min(x: torch.Tensor, low: float) -> torch.Tensor:
    y = x.clamp(min=low)
    return _floor_gradient(y, x, (x >= low).to(x.dtype))


def _conv(c_in: int, c_out: int, stride: int = 1, norm: bool = True) -> list[nn.Module]:
    """3x3 convolution, group norm (up to 8 groups) and leaky ReLU."""
    layers = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)]
    if norm:
        layers.append(nn.GroupNorm(math.gcd(8, c_out), c_out))
    return layers + [nn.LeakyReLU(0.2, True)]


class PhysicsDehazer(nn.Module):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 32, scale: int = 4, patch: int = 15,
                 omega: float = 0.95, radius: int = 30, eps: float = 1e-3, t_min: float = 0.05,
                 refine: int = 0, t_bound: float = 4.0, norm: str = "group") -> None:
        super().__init__()
        if in_channels != 3 or out_channels != 3:
            raise ValueError("the physics dehazer works on RGB images (in_channels = out_channels = 3)")
        if scale < 1 or patch < 1 or patch % 2 == 0 or radius < 0 or (radius and not eps > 0):
            raise ValueError(f"needs scale >= 1, an odd patch >= 1, radius >= 0 (0: no guided filter) and eps > 0; "
                             f"got scale {scale}, patch {patch}, radius {radius}, eps {eps}")
        if not t_bound > 0:
            raise ValueError(f"needs t_bound > 0 (the largest change of logit(t)); got {t_bound}")
        self.scale, self.patch, self.omega, self.radius, self.eps, self.t_min = scale, patch, omega, radius, eps, t_min
        self.t_bound = t_bound
        if norm not in ("group", "none"):
            raise ValueError(f"norm must be 'group' or 'none' (the correction CNN's normalization); got {norm!r}")
        # group norm keeps the scale of the CNN's activations fixed: without it they grew through training
        # (the output layer's from about 40 at step 500 to 1100 at step 1300 of configs/dehaze_sots.yaml on a
        # CPU without AMX) until the transmission saturated at 1 and the model became the identity
        w, n = width, norm == "group"
        conv = functools.partial(_conv, norm=n)
        self.down = nn.Sequential(*conv(5, w), *conv(w, 2 * w, 2), *conv(2 * w, 2 * w), *conv(2 * w, 4 * w, 2),
                                  *conv(4 * w, 4 * w))
        self.up = nn.Sequential(*conv(4 * w + 2 * w, 2 * w), *conv(2 * w, 2 * w))
        self.up2 = nn.Sequential(*conv(2 * w + w, w), nn.Conv2d(w, 1, 3, padding=1))
        self.skip1 = nn.Sequential(*conv(5, w))
        self.skip2 = nn.Sequential(*conv(5, w), *conv(w, 2 * w, 2))
        self.airlight_head = nn.Linear(4 * w, 3)
        self.t_gain = nn.Parameter(torch.zeros(1))
        self.a_gain = nn.Parameter(torch.zeros(1))
        self.refine = None
        if refine:
            r = refine
            self.refine = nn.Sequential(
                nn.Conv2d(7, r, 3, padding=1), nn.LeakyReLU(0.2, True),
                nn.Conv2d(r, r, 3, padding=2, dilation=2), nn.LeakyReLU(0.2, True),
                nn.Conv2d(r, r, 3, padding=4, dilation=4), nn.LeakyReLU(0.2, True),
                nn.Conv2d(r, r, 3, padding=8, dilation=8), nn.LeakyReLU(0.2, True),
                nn.Conv2d(r, 3, 3, padding=1))
        self.after_init()
        self.size_multiple = 1

    def after_init(self) -> None:
        """Zero the refinement's last layer (called again after the builder's weight init)."""
        if self.refine is not None:
            nn.init.zeros_(self.refine[-1].weight)
            nn.init.zeros_(self.refine[-1].bias)

    def prior(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dark channel, airlight (B x 3) and first transmission of images in [0, 1]."""
        with torch.no_grad():
            dark = dark_channel(img, self.patch)
            airlight = estimate_airlight(img, dark).clamp(min=0.05)
            t0 = 1 - self.omega * dark_channel(img / airlight[:, :, None, None], self.patch)
        return dark, airlight, t0.clamp(0.02, 0.98)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img = ((x.float() + 1) / 2).clamp(0, 1)
        h, w = img.shape[-2:]
        dark, airlight, t0 = self.prior(img)
        small_size = (max(4, -(-h // self.scale)), max(4, -(-w // self.scale)))
        feats = F.interpolate(torch.cat([img, t0, dark], 1), size=small_size, mode="area")
        deep = self.down(feats)  # 1/4 of the small size
        mid = self.skip2(feats)
        up = self.up(torch.cat([F.interpolate(deep, size=mid.shape[-2:], mode="bilinear", align_corners=False), mid], 1))
        delta = self.up2(torch.cat([F.interpolate(up, size=small_size, mode="bilinear", align_corners=False),
                                    self.skip1(feats)], 1))
        # the corrections are bounded (the logit of t moves by at most t_bound, A by at most 20 %), and every
        # bound passes at least GRAD_FLOOR of the gradient back: a correction driven into its bound can come back
        # (with a plain sigmoid, t saturated at 1 gave no gradient and the model stayed the identity)
        correction = self.t_bound * leaky_tanh(self.t_gain * delta.float() / self.t_bound)
        t_small = leaky_sigmoid(torch.logit(F.interpolate(t0, size=small_size, mode="area")) + correction)
        t = F.interpolate(t_small, size=(h, w), mode="bilinear", align_corners=False)
        if self.radius:
            t = guided_filter(gray(img), t, self.radius, self.eps)
        a = airlight * (1 + 0.2 * leaky_tanh(self.a_gain * self.airlight_head(deep.mean(dim=(2, 3))).float()))
        a = a[:, :, None, None]
        clear = (img - a) / leaky_clamp_min(t, self.t_min) + a
        if self.refine is not None:
            clear = clear.clamp(0, 1)
            clear = clear + self.refine(torch.cat([img, clear, t], 1))
        # clipped to [0, 1] on the way out, but the gradient passes the clip as if it were not there:
        # the prior's typical failure (white walls dehazed far below 0) would otherwise get no gradient
        clear = clear + (clear.clamp(0, 1) - clear).detach()
        return (clear * 2 - 1).to(x.dtype)


@GENERATORS.register("physics_dehazer")
def physics_dehazer(in_channels=3, out_channels=3, width=32, scale=4, patch=15, omega=0.95, radius=30, eps=1e-3,
                    t_min=0.05, refine=0, t_bound=4.0, norm="group"):
    """Dark-channel-prior dehazing with a learned transmission and airlight correction (RGB only)."""
    return PhysicsDehazer(in_channels, out_channels, width, scale, patch, omega, radius, eps, t_min, refine, t_bound,
                          norm)
