"""Weight initialization and spectral normalization of whole networks."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

#: layers whose ``weight`` is initialized by name and wrapped by spectral norm
WEIGHTED = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.Linear,
)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

_INITS: dict[str, Callable[[torch.Tensor, float], object]] = {
    "normal": lambda w, gain: nn.init.normal_(w, 0.0, gain),
    "xavier": lambda w, gain: nn.init.xavier_normal_(w, gain=gain),
    "kaiming": lambda w, gain: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
    "orthogonal": lambda w, gain: nn.init.orthogonal_(w, gain=gain),
}


def raw_weight(module: nn.Module) -> torch.Tensor:
    """The stored weight parameter (the un-normalized one under spectral norm)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


@torch.no_grad()
def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialize conv/linear weights by ``init_type`` (biases 0) and BatchNorm to N(1, gain), 0.

    ``normal``: N(0, gain); ``xavier``: Xavier normal with ``gain``; ``kaiming``: He normal
    (a=0, fan_in, ``gain`` unused); ``orthogonal``: orthogonal scaled by ``gain``.
    Under spectral norm the underlying weight is initialized.
    """
    if init_type not in _INITS:
        raise ValueError(f"unknown init {init_type!r}; expected one of {', '.join(_INITS)}")
    fill = _INITS[init_type]
    for module in net.modules():
        if isinstance(module, WEIGHTED):
            fill(raw_weight(module), gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _BATCH_NORMS) and module.affine:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Wrap every conv, transposed conv and linear weight with spectral normalization.

    Spectral norm (Miyato et al. 2018) divides the weight by its largest singular value,
    estimated by one power iteration per training forward pass.  Layers already
    parametrized are left alone.
    """
    for module in list(net.modules()):
        if isinstance(module, WEIGHTED) and not parametrize.is_parametrized(module, "weight"):
            spectral_norm(module)
    return net
