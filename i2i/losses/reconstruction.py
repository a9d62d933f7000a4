"""Pixel reconstruction terms shared by the translators.

* :func:`l1` - mean absolute error (pix2pix's L1(G(A), B)).
* :func:`cycle` - L1(F(G(a)), a) (CycleGAN's cycle consistency).
* :func:`identity` - L1(G(b), b) (CycleGAN's identity loss; G must keep images
  that already belong to its target domain).
All are means over every element, computed in fp32.
"""
from __future__ import annotations

import torch


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, in fp32."""
    return (output.float() - target.float()).abs().mean()


def cycle(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle-consistency loss ``E |F(G(a)) - a|``."""
    return l1(reconstructed, original)


def identity(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Identity loss ``E |G(b) - b|``."""
    return l1(mapped, original)
