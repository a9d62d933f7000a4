"""Image-to-image generators: ResNet (Johnson et al. 2016) and U-Net (Isola et al. 2017).

Every generator maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)`` in
[-1, 1] and has an int attribute ``size_multiple``: H and W must be divisible by it; a
``min_size`` attribute, where there is one, is the smallest H and W it takes.
The layer order (and so the ``state_dict`` keys) follows the published
pix2pix/CycleGAN networks.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..registry import GENERATORS
from .blocks import BlurDownsample, BlurUpsample, ResnetBlock, UnetSkipBlock, padded_conv
from .norms import conv_bias, norm_layer
from .taps import sequential_tap_channels, sequential_taps


def check_size(x: torch.Tensor, multiple: int, what: str) -> None:
    """Raise ValueError unless the spatial size of ``x`` is divisible by ``multiple``."""
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"{what}: input size {h}x{w} is not divisible by {multiple}")


class ResnetGenerator(nn.Module):
    """7x7 conv, two stride-2 convs, ``n_blocks`` residual blocks, two 2x transposed convs, 7x7 conv, Tanh.

    With ``antialias`` (CUT's generator) each stride-2 conv becomes a stride-1 conv, norm, ReLU and a
    :class:`BlurDownsample`, and each transposed conv a :class:`BlurUpsample` then a 3x3 conv, norm, ReLU.

    Feature taps (:mod:`i2i.nn.taps`): layer ``i`` is the output of ``self.model[i]``.  Antialiased, 0 is
    the padded input, 1 and 4 and 8 the outputs of the first three convs (before their norms), 12 + k
    that of residual block k (from 0): CUT's ``nce_layers`` 0, 4, 8, 12, 16.  Without ``antialias`` the
    downsampling stages have three modules each, not four, so the blocks start at 10.
    """

    n_down = 2

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        n_blocks: int = 9,
        padding: str = "reflect",
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.size_multiple = 2**self.n_down
        self.min_size = 2 * self.size_multiple  # a 2 x 2 bottleneck: instance norm and reflect padding need 2 px
        layers = padded_conv(in_channels, ngf, 7, "reflect", bias) + [make_norm(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(self.n_down):
            if antialias:
                layers += [nn.Conv2d(ch, ch * 2, 3, padding=1, bias=bias), make_norm(ch * 2), nn.ReLU(True),
                           BlurDownsample(ch * 2)]
            else:
                layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), make_norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout, padding) for _ in range(n_blocks)]
        for _ in range(self.n_down):
            if antialias:
                layers += [BlurUpsample(ch), nn.Conv2d(ch, ch // 2, 3, padding=1, bias=bias)]
            else:
                layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            layers += [make_norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += padded_conv(ch, out_channels, 7, "reflect", True) + [nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.size_multiple, "resnet generator")
        return self.model(x)

    def taps(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        check_size(x, self.size_multiple, "resnet generator")
        return sequential_taps(self.model, x, layers)

    def tap_channels(self, layers: Sequence[int]) -> list[int]:
        return sequential_tap_channels(self.model, self.in_channels, layers)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (>= 5); ``2**num_downs`` px shrink to 1x1.

    Widths from the outside in: ngf, 2ngf, 4ngf, then 8ngf for every deeper level.  With
    ``dropout`` the ``num_downs - 5`` 8ngf levels between the innermost one and the
    4ngf level apply dropout 0.5 on their up path.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
        num_downs: int = 8,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        norm_layer(norm)  # fail early on an unknown name
        self.size_multiple = 2**num_downs
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = UnetSkipBlock(out_channels, ngf, in_channels, block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.size_multiple, "unet generator")
        return self.model(x)


# --------------------------------------------------------------------------- registered builders
@GENERATORS.register("resnet")
def resnet(in_channels=3, out_channels=3, ngf=64, norm="instance", dropout=False, n_blocks=9, padding="reflect",
           antialias=False):
    """ResNet generator with ``n_blocks`` residual blocks at 1/4 resolution (``antialias``: blurred resampling)."""
    return ResnetGenerator(in_channels, out_channels, ngf, norm, dropout, n_blocks, padding, antialias)


@GENERATORS.register("resnet_6blocks")
def resnet_6blocks(in_channels=3, out_channels=3, ngf=64, norm="instance", dropout=False, padding="reflect",
                   antialias=False):
    """ResNet generator with 6 blocks (the CycleGAN choice for 128 px images)."""
    return ResnetGenerator(in_channels, out_channels, ngf, norm, dropout, 6, padding, antialias)


@GENERATORS.register("resnet_9blocks")
def resnet_9blocks(in_channels=3, out_channels=3, ngf=64, norm="instance", dropout=False, padding="reflect",
                   antialias=False):
    """ResNet generator with 9 blocks (the CycleGAN choice for 256 px images)."""
    return ResnetGenerator(in_channels, out_channels, ngf, norm, dropout, 9, padding, antialias)


@GENERATORS.register("unet")
def unet(in_channels=3, out_channels=3, ngf=64, norm="batch", dropout=False, num_downs=8):
    """U-Net generator with ``num_downs`` levels."""
    return UnetGenerator(in_channels, out_channels, ngf, norm, dropout, num_downs)


@GENERATORS.register("unet_128")
def unet_128(in_channels=3, out_channels=3, ngf=64, norm="batch", dropout=False):
    """U-Net with 7 levels: a 128 px input reaches 1x1 at the bottleneck."""
    return UnetGenerator(in_channels, out_channels, ngf, norm, dropout, 7)


@GENERATORS.register("unet_256")
def unet_256(in_channels=3, out_channels=3, ngf=64, norm="batch", dropout=False):
    """U-Net with 8 levels, the pix2pix generator: a 256 px input reaches 1x1 at the bottleneck."""
    return UnetGenerator(in_channels, out_channels, ngf, norm, dropout, 8)
