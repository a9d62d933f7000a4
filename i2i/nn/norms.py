"""Normalization layers selected by name: ``batch``, ``instance``, ``layer`` or ``none``."""
from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.Module):
    """Instance norm without parameters or running statistics: each (sample, channel) plane
    scaled to zero mean and unit (biased) variance.

    Computed as a group norm with one group per channel (the same numbers): unlike
    ``nn.InstanceNorm2d`` its CPU kernel keeps a channels-last input channels-last, and it
    is faster in either layout.  A single channels-last image goes through batch norm's
    NHWC kernel instead, 3x faster on CPU: with one sample, batch statistics are the
    instance statistics.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels, self.eps = channels, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.shape[0] == 1 and not x.is_contiguous() \
                and x.is_contiguous(memory_format=torch.channels_last):
            return F.batch_norm(x, None, None, training=True, eps=self.eps)
        return F.group_norm(x, self.channels, None, None, self.eps)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}"


_FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    # affine scale/shift and running statistics for evaluation
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    # per-image statistics only, no learned parameters (Ulyanov et al. 2016)
    "instance": InstanceNorm,
    # per-sample statistics over (C, H, W), learned per-channel scale/shift (Ba et al. 2016; UNIT's decoder)
    "layer": lambda channels: nn.GroupNorm(1, channels),
    "none": lambda channels: nn.Identity(),
}

NORMS = tuple(_FACTORIES)  #: the norm names a network section may ask for


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    """Factory ``channels -> module`` for the normalization called ``name``."""
    try:
        return _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown norm {name!r}; expected one of {', '.join(_FACTORIES)}") from None


def conv_bias(name: str) -> bool:
    """Whether a conv followed by norm ``name`` carries a bias (batch norm has its own shift)."""
    norm_layer(name)  # validates the name
    return name != "batch"
