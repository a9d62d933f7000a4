"""Full-reference image metrics: PSNR and SSIM (Wang et al. 2004).

Layouts: NumPy arrays are channel-last (``H x W`` or ``H x W x C``, as images are
read), torch tensors channel-first (``C x H x W`` or ``N x C x H x W``).  Values are
on a scale ``[0, data_range]``; computations are done in float64.

* PSNR = ``10 log10(data_range^2 / MSE)``, MSE over all pixels and channels of one
  image; ``inf`` for identical images.
* SSIM: 11 x 11 Gaussian window (sigma 1.5, normalised to sum 1), K1 = 0.01, K2 = 0.03,
  biased local variances, mean of the SSIM map over the valid region (no padding,
  5 pixels cropped per side), averaged over channels.
* ``y_channel=True`` converts RGB to luma first (ITU-R BT.601 as MATLAB ``rgb2ycbcr``:
  ``Y = (16 L + 65.481 R + 128.553 G + 24.966 B) / 255`` with ``L = data_range``, i.e.
  16..235 on the 0..255 scale) and scores that single channel.

The ``*_per_image`` functions return one value per image (``N``); ``psnr``/``ssim``
return their mean as a float.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def _to_nchw(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().to(torch.float64)
        if t.dim() == 2:
            t = t[None]
        if t.dim() == 3:
            t = t[None]
    else:
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3:
            raise ValueError(f"expected an H x W or H x W x C array, got shape {a.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
    if t.dim() != 4:
        raise ValueError(f"expected C x H x W or N x C x H x W, got shape {tuple(t.shape)}")
    return t


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 0..255 (``round((x + 1) * 127.5)``, clamped), as saved to PNG."""
    return ((x.detach().float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def rgb_to_y(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """``N x 3 x H x W`` RGB in ``[0, data_range]`` -> ``N x 1 x H x W`` BT.601 luma."""
    if x.shape[1] != 3:
        raise ValueError(f"Y channel needs 3-channel RGB input, got {x.shape[1]} channels")
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * w).sum(dim=1, keepdim=True) + 16.0 * data_range) / 255.0


def _prepare(a, b, data_range: float, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _to_nchw(a), _to_nchw(b)
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.numel() == 0:
        raise ValueError(f"empty images: shape {tuple(x.shape)}")
    if y_channel:
        x, y = rgb_to_y(x, data_range), rgb_to_y(y, data_range)
    return x, y


def psnr_per_image(a, b, data_range: float = 255.0, y_channel: bool = False) -> torch.Tensor:
    """PSNR in dB of each image pair (``inf`` where identical)."""
    x, y = _prepare(a, b, data_range, y_channel)
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def psnr(a, b, data_range: float = 255.0, y_channel: bool = False) -> float:
    """Mean PSNR (dB) over the images of ``a`` and ``b``."""
    return float(psnr_per_image(a, b, data_range, y_channel).mean())


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64) -> torch.Tensor:
    """1-D Gaussian of ``size`` taps, normalised to sum 1."""
    r = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim_per_image(a, b, data_range: float = 255.0, y_channel: bool = False, win_size: int = 11,
                   sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of each image pair over the valid region, averaged over channels."""
    x, y = _prepare(a, b, data_range, y_channel)
    c, h, w = x.shape[1:]
    if h < win_size or w < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size} x {win_size} pixels, got {h} x {w}")
    g = gaussian_window(win_size, sigma).to(x.device)
    gh, gw = g.view(1, 1, win_size, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, win_size).repeat(c, 1, 1, 1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gh, groups=c), gw, groups=c)

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return smap.mean(dim=(1, 2, 3))


def ssim(a, b, data_range: float = 255.0, y_channel: bool = False, win_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM over the images of ``a`` and ``b`` (see the module docstring)."""
    return float(ssim_per_image(a, b, data_range, y_channel, win_size, sigma, k1, k2).mean())


__all__ = ["quantize", "psnr", "psnr_per_image", "ssim", "ssim_per_image", "rgb_to_y", "gaussian_window"]
