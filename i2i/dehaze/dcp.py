"""Dark channel prior dehazing (He, Sun & Tang, "Single Image Haze Removal Using Dark Channel
Prior", CVPR 2009 / TPAMI 2011), with the guided-filter refinement of the transmission
(He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013).

For a hazy image ``I = J t + A (1 - t)`` (see :mod:`i2i.data.haze`), in [0, 1]:

1. dark channel ``dark(I)(x) = min over the patch around x of min over channels of I``
   (``patch`` 15 x 15; haze-free outdoor patches have a dark channel near 0);
2. airlight ``A``: among the ``top`` (0.1 %) pixels of largest dark channel, the colour of the
   one that is brightest in ``I`` (channel sum);
3. transmission ``t~ = 1 - omega dark(I / A)`` (``omega`` 0.95 keeps a trace of haze for
   depth perception);
4. refinement: guided filter of ``t~`` with the gray image as guide (``radius`` 60, ``eps``
   1e-3), in place of the paper's soft matting;
5. radiance ``J = (I - A) / max(t, t0) + A`` (``t0`` 0.1), clipped to [0, 1].

Everything works on batches of float tensors ``B x C x H x W`` in [-1, 1] (the project's
image convention) on any device; statistics are computed per image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


def dark_channel(img: torch.Tensor, patch: int = 15) -> torch.Tensor:
    """``B x 1 x H x W`` minimum over channels and a ``patch x patch`` window (clipped at the borders)."""
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be an odd size >= 1, got {patch}")
    darkest = img.amin(dim=1, keepdim=True)
    if patch == 1:
        return darkest
    # min filter = -max filter of the negation; max_pool pads with -inf, so borders see only the image;
    # the square window is a row window then a column window (same result, 2 p instead of p^2 compares)
    r = patch // 2
    rows = F.max_pool2d(-darkest, (1, patch), stride=1, padding=(0, r))
    return -F.max_pool2d(rows, (patch, 1), stride=1, padding=(r, 0))


def estimate_airlight(img: torch.Tensor, dark: torch.Tensor, top: float = 0.001) -> torch.Tensor:
    """``B x C`` airlight: the brightest pixel of ``img`` among the ``top`` fraction with largest ``dark``."""
    if not 0 < top <= 1:
        raise ValueError(f"top must be in (0, 1], got {top}")
    b, c = img.shape[:2]
    flat_dark = dark.reshape(b, -1)
    k = max(1, int(top * flat_dark.shape[1]))
    idx = flat_dark.topk(k, dim=1).indices  # B x k
    colours = img.reshape(b, c, -1).gather(2, idx[:, None, :].expand(b, c, k))  # B x C x k
    brightest = colours.sum(dim=1).argmax(dim=1)  # B
    return colours[torch.arange(b, device=img.device), :, brightest]


def _box_1d(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Sums over windows ``[i - r, i + r]`` (clipped to the array) along ``dim``, by a cumulative sum."""
    n = x.shape[dim]
    c = torch.cumsum(x, dim=dim)
    c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
    i = torch.arange(n, device=x.device)
    hi, lo = (i + r + 1).clamp(max=n), (i - r).clamp(min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the ``(2r + 1)^2`` window around each pixel of ``B x C x H x W``, clipped at the borders."""
    ones = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    count = _box_1d(_box_1d(ones, r, 2), r, 3)
    return _box_1d(_box_1d(x, r, 2), r, 3) / count


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int = 60, eps: float = 1e-3) -> torch.Tensor:
    """Gray-guided filter (He et al. 2010): locally ``q = a guide + b`` fitted to ``src`` with ridge ``eps``.

    ``guide`` and ``src`` are ``B x 1 x H x W``; computed in float64 where the device has it
    (the box sums are long), else in float32.
    """
    if radius < 1 or eps <= 0:
        raise ValueError(f"guided filter needs radius >= 1 and eps > 0, got {radius}, {eps}")
    wide = torch.float64 if guide.device.type in ("cpu", "cuda") else torch.float32
    g, p = guide.to(wide), src.to(wide)
    mean_g, mean_p = box_mean(g, radius), box_mean(p, radius)
    cov_gp = box_mean(g * p, radius) - mean_g * mean_p
    var_g = box_mean(g * g, radius) - mean_g * mean_g
    a = cov_gp / (var_g + eps)
    b = mean_p - a * mean_g
    return (box_mean(a, radius) * g + box_mean(b, radius)).to(src.dtype)


def gray(img: torch.Tensor) -> torch.Tensor:
    """``B x 1 x H x W`` luma (BT.601 weights) of RGB, the image itself if it has one channel."""
    if img.shape[1] == 1:
        return img
    r, g, b = _LUMA  # (Python numbers: no weight tensor copied to the device, which the host would wait for)
    return img[:, 0:1] * r + img[:, 1:2] * g + img[:, 2:3] * b


@dataclass
class DCPResult:
    """Outputs of :meth:`DarkChannelPrior.estimate`, images in [0, 1]."""

    dehazed: torch.Tensor  #: B x C x H x W radiance J
    airlight: torch.Tensor  #: B x C
    transmission: torch.Tensor  #: B x 1 x H x W, refined (before the t0 floor)
    raw_transmission: torch.Tensor  #: B x 1 x H x W, 1 - omega dark(I / A)
    dark: torch.Tensor  #: B x 1 x H x W dark channel of I


class DarkChannelPrior:
    """Dark channel prior dehazer: a training-free image-to-image translator.

    ``dcp(x)`` maps ``B x C x H x W`` (or ``C x H x W``) tensors in [-1, 1] to dehazed tensors in
    [-1, 1], and ``H x W x C`` uint8 arrays to uint8 arrays.  ``radius=0`` skips the refinement.
    """

    def __init__(self, patch: int = 15, omega: float = 0.95, t0: float = 0.1, top: float = 0.001,
                 radius: int = 60, eps: float = 1e-3, device: str | torch.device = "cpu") -> None:
        if not 0 < omega <= 1:
            raise ValueError(f"omega must be in (0, 1], got {omega}")
        if not 0 < t0 <= 1:
            raise ValueError(f"t0 must be in (0, 1], got {t0}")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        dark_channel(torch.zeros(1, 1, 1, 1), patch)  # validates patch
        estimate_airlight(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), top)  # validates top
        self.patch, self.omega, self.t0, self.top, self.radius, self.eps = patch, omega, t0, top, radius, eps
        self.device = torch.device(device)

    @torch.no_grad()
    def estimate(self, x: torch.Tensor) -> DCPResult:
        """All intermediate quantities for a ``B x C x H x W`` batch in [-1, 1]."""
        img = ((x.to(self.device, torch.float32) + 1) / 2).clamp(0, 1)
        dark = dark_channel(img, self.patch)
        airlight = estimate_airlight(img, dark, self.top)
        a = airlight.clamp(min=1e-3)[:, :, None, None]
        raw = 1 - self.omega * dark_channel(img / a, self.patch)
        t = guided_filter(gray(img), raw, self.radius, self.eps) if self.radius > 0 else raw
        t = t.clamp(max=1.0)
        dehazed = ((img - a) / t.clamp(min=self.t0) + a).clamp(0, 1)
        return DCPResult(dehazed, airlight, t, raw, dark)

    def translate_tensor(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """``B x C x H x W`` in [-1, 1] -> dehazed, same shape, in [-1, 1] (the translator interface)."""
        return self.estimate(x).dehazed * 2 - 1

    def channels(self, direction: str = "AtoB") -> tuple[int, int]:
        return 3, 3

    def translation_report(self) -> dict[str, float]:
        return {}  # (the translator interface) nothing to measure

    def __call__(self, image):
        if torch.is_tensor(image):
            batched = image.dim() == 4
            out = self.translate_tensor(image if batched else image[None])
            return out if batched else out[0]
        from ..data.io import image_to_tensor, tensor_to_image

        array = np.asarray(image)
        return tensor_to_image(self.translate_tensor(image_to_tensor(array)[None])[0])

    def __repr__(self) -> str:
        return (f"DarkChannelPrior(patch={self.patch}, omega={self.omega}, t0={self.t0}, top={self.top}, "
                f"radius={self.radius}, eps={self.eps})")
