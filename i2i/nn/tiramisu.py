"""FC-DenseNet ("Tiramisu") generator (Jegou et al. 2017, "The One Hundred Layers Tiramisu").

The default configuration is the DehazeGAN generator (the paper's FC-DenseNet56 with compression):

* a 3x3 conv to ``first_channels`` (48) feature maps;
* ``n_blocks`` (5) down levels, each a dense block of ``layers`` (4) composite layers
  (norm, ReLU, 3x3 conv to ``growth`` (12) maps, dropout ``dropout`` (0.2)) whose input and
  outputs are concatenated, then a transition down: norm, ReLU, 1x1 conv keeping
  ``floor(compression * channels)`` maps (0.5), dropout, 2x2 average pool.  The dense
  block's output (before the transition) is the level's skip connection;
* a bottleneck dense block of ``bottleneck_layers`` (15) layers;
* ``n_blocks`` up levels, each a transition up (3x3 stride-2 transposed conv of the whole
  previous block output to ``up_channels`` (48) maps), concatenated with the level's skip,
  then a dense block of the level's number of layers (the down levels' list, mirrored);
* a 1x1 conv to ``out_channels`` and tanh.

Where the Tiramisu paper uses max pooling, a channel-preserving transition and transposes
only the new maps of each up block, this follows the DehazeGAN variant (average pooling,
compression, the whole block upsampled).  The convolutions carry no bias (every one of them
feeds a normalization), except the output conv.  Unlike the reference, the transition down
applies a ReLU after its norm, as in DenseNet (Huang et al. 2017).

Spatial sizes must be multiples of ``2 ** n_blocks`` (the ``size_multiple`` attribute).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..registry import GENERATORS
from .generators import check_size
from .norms import norm_layer


class DenseLayer(nn.Sequential):
    """Norm, ReLU, 3x3 conv to ``growth`` maps, dropout: the composite layer of a dense block."""

    def __init__(self, channels: int, growth: int, dropout: float, norm: str) -> None:
        super().__init__(
            norm_layer(norm)(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, growth, 3, padding=1, bias=False),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        )


class DenseBlock(nn.Module):
    """``n_layers`` dense layers, each fed the concatenation of the block input and all earlier outputs.

    Returns ``cat([x, y1, ..., yn])``: ``channels + n_layers * growth`` maps.
    """

    def __init__(self, channels: int, n_layers: int, growth: int, dropout: float, norm: str) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(channels + i * growth, growth, dropout, norm) for i in range(n_layers)
        )
        self.out_channels = channels + n_layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitionDown(nn.Sequential):
    """Norm, ReLU, 1x1 conv to ``out_channels``, dropout, 2x2 average pool."""

    def __init__(self, channels: int, out_channels: int, dropout: float, norm: str) -> None:
        super().__init__(
            norm_layer(norm)(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, out_channels, 1, bias=False),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.AvgPool2d(2),
        )


def transition_up(channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """3x3 stride-2 transposed conv that exactly doubles H and W."""
    return nn.ConvTranspose2d(channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False)


def _layer_list(layers: int | Sequence[int], n_blocks: int) -> list[int]:
    if isinstance(layers, bool):
        raise ValueError(f"layers must be an int or a list of {n_blocks} ints, got {layers!r}")
    if isinstance(layers, int):
        layers = [layers] * n_blocks
    layers = list(layers)
    if len(layers) != n_blocks:
        raise ValueError(f"layers has {len(layers)} entries, expected one per block (n_blocks={n_blocks})")
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in layers):
        raise ValueError(f"layers must be ints >= 1, got {layers}")
    return layers


class TiramisuGenerator(nn.Module):
    """FC-DenseNet mapping ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)`` in [-1, 1]."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: int = 5,
        layers: int | Sequence[int] = 4,
        bottleneck_layers: int = 15,
        growth: int = 12,
        compression: float = 0.5,
        dropout: float = 0.2,
        first_channels: int = 48,
        up_channels: int = 48,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        down_layers = _layer_list(layers, n_blocks)
        for name, value in (("bottleneck_layers", bottleneck_layers), ("growth", growth),
                            ("first_channels", first_channels), ("up_channels", up_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        norm_layer(norm)  # fail early on an unknown name
        self.size_multiple = 2**n_blocks

        self.first = nn.Conv2d(in_channels, first_channels, 3, padding=1, bias=False)
        ch = first_channels
        self.down_blocks, self.downs, skips = nn.ModuleList(), nn.ModuleList(), []
        for n in down_layers:
            block = DenseBlock(ch, n, growth, dropout, norm)
            ch = block.out_channels
            skips.append(ch)
            reduced = max(1, math.floor(compression * ch))
            self.down_blocks.append(block)
            self.downs.append(TransitionDown(ch, reduced, dropout, norm))
            ch = reduced
        self.bottleneck = DenseBlock(ch, bottleneck_layers, growth, dropout, norm)
        ch = self.bottleneck.out_channels
        self.ups, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for n, skip in zip(reversed(down_layers), reversed(skips)):
            self.ups.append(transition_up(ch, up_channels))
            block = DenseBlock(up_channels + skip, n, growth, dropout, norm)
            self.up_blocks.append(block)
            ch = block.out_channels
        self.last = nn.Conv2d(ch, out_channels, 1)
        self.tanh = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.size_multiple, "tiramisu generator")
        x = self.first(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downs):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.ups, self.up_blocks, reversed(skips)):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.tanh(self.last(x))


@GENERATORS.register("tiramisu")
def tiramisu(in_channels=3, out_channels=3, n_blocks=5, layers=4, bottleneck_layers=15, growth=12,
             compression=0.5, dropout=0.2, first_channels=48, up_channels=48, norm="batch"):
    """FC-DenseNet ("Tiramisu"); the defaults are the DehazeGAN generator."""
    return TiramisuGenerator(in_channels, out_channels, n_blocks, layers, bottleneck_layers, growth,
                             compression, dropout, first_channels, up_channels, norm)
