"""Projection heads: small networks that embed sampled features of a generator for a contrastive loss.

A head is built from the channel counts of the features it reads (a generator's
``tap_channels``, :mod:`i2i.nn.taps`) and maps a list of ``B x P x C_l`` patch
features, one per tapped layer, to a list of ``B x P x D`` embeddings.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS


class MLPHead(nn.Module):
    """One two-layer MLP per tapped layer (Linear(C_l, units), ReLU, Linear(units, units)), outputs scaled to
    unit L2 norm: CUT's ``F`` network (Park et al. 2020), whose MLPs are 256 units wide."""

    def __init__(self, in_channels: Sequence[int], units: int = 256) -> None:
        super().__init__()
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, units), nn.ReLU(), nn.Linear(units, units))
                                  for c in in_channels)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.mlps):
            raise ValueError(f"projection head: {len(feats)} feature maps for {len(self.mlps)} layers")
        return [F.normalize(mlp(f), dim=-1, eps=1e-7) for mlp, f in zip(self.mlps, feats)]


@HEADS.register("mlp")
def mlp(in_channels: Sequence[int] = (), units: int = 256) -> MLPHead:
    """A two-layer MLP of ``units`` units per tapped layer, L2-normalized outputs."""
    return MLPHead(in_channels, units)
