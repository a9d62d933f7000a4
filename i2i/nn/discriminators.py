"""Discriminators returning raw logits: PatchGAN, PixelGAN (Isola et al. 2017) and the
multi-scale PatchGAN of pix2pixHD (Wang et al. 2018).

Single-scale discriminators return one ``(N, 1, h, w)`` logit map; the multi-scale one
returns a list of maps, finest scale first.
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import DISCRIMINATORS
from .blocks import BlurDownsample
from .norms import conv_bias, norm_layer


class PatchDiscriminator(nn.Module):
    """``n_layers`` 4x4 stride-2 convs, one 4x4 stride-1 conv, then a 1-channel 4x4 conv.

    Widths ndf, 2ndf, 4ndf, 8ndf (capped at 8ndf); LeakyReLU(0.2) after every conv but the
    last; no norm on the first conv.  With ``n_layers=3`` each logit sees a 70x70 patch and
    a 256 px input gives a 30x30 map.

    With ``antialias`` (the CUT repository's default discriminator) each stride-2 conv becomes a stride-1
    conv, its norm and LeakyReLU, then a :class:`BlurDownsample`: the layers (and state-dict keys) of
    that repository's anti-aliased PatchGAN, at about 4x the work of those convs.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 antialias: bool = False) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        down = 1 if antialias else 2
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=down, padding=1), nn.LeakyReLU(0.2, True)]
        layers += [BlurDownsample(ndf)] if antialias else []
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = down if n < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=bias), make_norm(out), nn.LeakyReLU(0.2, True)]
            layers += [BlurDownsample(out)] if antialias and n < n_layers else []
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: a per-pixel classifier of 1x1 convs (ndf, 2ndf, 1)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            make_norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StridedDiscriminator(nn.Module):
    """``n_layers`` 4x4 stride-2 convs (widths ndf, 2ndf, ... capped at 8ndf; LeakyReLU 0.2,
    reflection padding), then a 1x1 conv to one logit channel: UNIT's discriminator
    (Liu et al. 2017), one logit per 2**n_layers pixels."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 4, norm: str = "none") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = []
        ch = in_channels
        for n in range(n_layers):
            out = ndf * min(2**n, 8)
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(ch, out, 4, stride=2, bias=bias or n == 0)]
            layers += ([] if n == 0 else [make_norm(out)]) + [nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


_DESIGNS = {"patchgan": PatchDiscriminator, "strided": StridedDiscriminator}


class MultiscaleDiscriminator(nn.Module):
    """``num_scales`` independent discriminators of one ``design`` (``patchgan``: pix2pixHD,
    ``strided``: UNIT); scale k sees the input average-pooled k times (3x3, stride 2,
    padding 1, padding excluded from the mean)."""

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch", num_scales: int = 3,
        design: str = "patchgan",
    ) -> None:
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        if design not in _DESIGNS:
            raise ValueError(f"design must be one of {', '.join(_DESIGNS)}, got {design!r}")
        self.scales = nn.ModuleList(_DESIGNS[design](in_channels, ndf, n_layers, norm) for _ in range(num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outputs.append(disc(x))
        return outputs


@DISCRIMINATORS.register("patchgan")
def patchgan(in_channels=3, ndf=64, n_layers=3, norm="batch", antialias=False):
    """PatchGAN; ``n_layers=3`` is the 70x70 discriminator of pix2pix and CycleGAN (``antialias``: CUT's)."""
    return PatchDiscriminator(in_channels, ndf, n_layers, norm, antialias)


@DISCRIMINATORS.register("pixelgan")
def pixelgan(in_channels=3, ndf=64, norm="batch"):
    """1x1 PatchGAN: judges every pixel on its own."""
    return PixelDiscriminator(in_channels, ndf, norm)


@DISCRIMINATORS.register("multiscale")
def multiscale(in_channels=3, ndf=64, n_layers=3, norm="batch", num_scales=3, design="patchgan"):
    """``num_scales`` discriminators at halving resolutions; returns a list of logit maps."""
    return MultiscaleDiscriminator(in_channels, ndf, n_layers, norm, num_scales, design)
