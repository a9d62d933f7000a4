"""Feature taps: the activations of a generator's layers, for losses that compare them (CUT's PatchNCE).

A generator offers taps with two methods:

* ``taps(x, layers)``: the outputs of its layers numbered ``layers`` for the input ``x``, as a list in
  the order asked (each ``N x C x H x W``), running the network only as far as the last of them;
* ``tap_channels(layers)``: their channel counts, known without running it (a model builds the
  networks that read the taps when it is built).

Both raise ValueError for a number the generator does not have.  What a number means is the
generator's to document; for a network that is one ``nn.Sequential`` (the ResNet generator), layer
``i`` is the output of its ``i``-th module, counted from 0, the way the CUT authors count.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def offers_taps(net: nn.Module) -> bool:
    return callable(getattr(net, "taps", None)) and callable(getattr(net, "tap_channels", None))


def check_layers(layers: Sequence[int], n: int) -> list[int]:
    """``layers`` as a list of ints in [0, n); ValueError naming the first that is not."""
    layers = list(layers)
    if not layers:
        raise ValueError("feature taps: no layer asked for")
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise ValueError(f"feature taps: layer {i!r} is not one of the generator's layers 0-{n - 1}")
    return layers


def sequential_taps(seq: nn.Sequential, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
    """The outputs of modules ``layers`` of ``seq`` for ``x``; a tapped output that the next module would
    change in place (an in-place ReLU) is tapped as a copy."""
    layers = check_layers(layers, len(seq))
    wanted, last, found = set(layers), max(layers), {}
    for i in range(last + 1):
        x = seq[i](x)
        if i in wanted:
            found[i] = x.clone() if i < last and getattr(seq[i + 1], "inplace", False) else x
    return [found[i] for i in layers]


def sequential_tap_channels(seq: nn.Sequential, in_channels: int, layers: Sequence[int]) -> list[int]:
    """Channels of the outputs of modules ``layers`` of ``seq``: a module with ``out_channels`` (a conv)
    sets them, any other (norm, activation, padding, residual block, resampling) keeps them."""
    layers = check_layers(layers, len(seq))
    channels, ch = [], in_channels
    for module in seq:
        ch = getattr(module, "out_channels", ch)
        channels.append(ch)
    return [channels[i] for i in layers]
