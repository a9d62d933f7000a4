"""Building blocks of the generators: residual block, U-Net skip level, anti-aliased resampling."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .norms import conv_bias, norm_layer

_PADS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": None}


def padded_conv(in_ch: int, out_ch: int, kernel: int, padding: str, bias: bool) -> list[nn.Module]:
    """A stride-1 'same' conv, padded by a layer (reflect, replicate) or by zeros in the conv."""
    if padding not in _PADS:
        raise ValueError(f"unknown padding {padding!r}; expected one of {', '.join(_PADS)}")
    pad = kernel // 2
    if _PADS[padding] is None:
        return [nn.Conv2d(in_ch, out_ch, kernel, padding=pad, bias=bias)]
    return [_PADS[padding](pad), nn.Conv2d(in_ch, out_ch, kernel, padding=0, bias=bias)]


class ResnetBlock(nn.Module):
    """``x + F(x)`` with F = pad, conv3x3, norm, ReLU, [dropout 0.5], pad, conv3x3, norm."""

    def __init__(self, channels: int, norm: str, dropout: bool, padding: str) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers = padded_conv(channels, channels, 3, padding, bias) + [make_norm(channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += padded_conv(channels, channels, 3, padding, bias) + [make_norm(channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class UnetSkipBlock(nn.Module):
    """One U-Net level: 4x4 stride-2 conv down, the inner levels, 4x4 transposed conv up.

    Inner levels return ``cat([a, up(inner(down(a)))])`` where ``a`` is the LeakyReLU-
    activated input, as in the pix2pix U-Net (Isola et al. 2017).  The innermost level has
    no norm on its down path; the outermost one has no activation or norm on its down path
    and ends with Tanh instead of norm.
    """

    def __init__(
        self,
        outer_ch: int,
        inner_ch: int,
        in_ch: int | None = None,
        submodule: nn.Module | None = None,
        *,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        in_ch = outer_ch if in_ch is None else in_ch
        down_conv = nn.Conv2d(in_ch, inner_ch, 4, stride=2, padding=1, bias=bias)
        up_in = inner_ch if innermost else inner_ch * 2  # the inner levels double the channels
        if outermost:
            down = [down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer_ch, 4, stride=2, padding=1), nn.Tanh()]
        else:
            down = [nn.LeakyReLU(0.2), down_conv] + ([] if innermost else [make_norm(inner_ch)])
            up_conv = nn.ConvTranspose2d(up_in, outer_ch, 4, stride=2, padding=1, bias=bias)
            up = [nn.ReLU(True), up_conv, make_norm(outer_ch)] + ([nn.Dropout(0.5)] if dropout else [])
        middle = [] if submodule is None else [submodule]
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        act = self.model[0](x)  # the skip carries the activated input
        return torch.cat([act, self.model[1:](act)], dim=1)


def binomial_kernel(taps: list[float], channels: int) -> torch.Tensor:
    """The separable filter ``taps`` x ``taps`` normalized to sum 1, one copy per channel (a depthwise weight)."""
    a = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(a, a)
    return (k / k.sum()).expand(channels, 1, len(taps), len(taps)).clone()


class BlurDownsample(nn.Module):
    """Anti-aliased 2x downsampling (Zhang 2019, as in CUT's generator): blur with [1, 2, 1] x [1, 2, 1] / 16
    (reflect-padded by one pixel), then keep every second pixel of each row and column.

    The filter is a constant (a buffer outside the ``state_dict``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", binomial_kernel([1.0, 2.0, 1.0], channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.to(x.dtype), stride=2,
                        groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Anti-aliased 2x upsampling (as in CUT's generator): zeros inserted between pixels, then a blur with
    [1, 3, 3, 1] x [1, 3, 3, 1] / 16 (sum 4, the zeros' share), edges replicated.  Each output pixel is
    3/4 of its nearest input pixel and 1/4 of the next one along each axis: bilinear interpolation with
    ``align_corners=False``, written as a fixed transposed convolution (deterministic on GPUs, unlike the
    backward pass of ``F.interpolate``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", 4 * binomial_kernel([1.0, 3.0, 3.0, 1.0], channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # padded by 1, a stride-2 transposed 4x4 conv gives 2n + 6 pixels per axis; output 2j is pixel 2j + 3
        return F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype), stride=2,
                                  padding=3, groups=x.shape[1])
