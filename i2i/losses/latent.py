"""Latent-space terms of VAE-GAN translators (UNIT, Liu et al. 2017)."""
from __future__ import annotations

import torch


def kl_unit_variance(mu: torch.Tensor) -> torch.Tensor:
    """``mean(mu ** 2)``: the KL term of a VAE whose posterior is N(mu, I) against N(0, I).

    The exact divergence is ``0.5 * sum(mu ** 2)`` per sample; UNIT's authors use the
    mean over every element (batch, channels, pixels), which only rescales the weight.
    Computed in fp32.
    """
    return mu.float().pow(2).mean()
