"""Build a network from its config section: registry builder, spectral norm, weight init."""
from __future__ import annotations

import inspect

from torch import nn

from ..config import NetConfig
from ..registry import DISCRIMINATORS, GENERATORS, Registry
from .init import apply_spectral_norm, init_weights


def _channel_kwargs(builder, **channels: int) -> dict[str, int]:
    """The channel arguments ``builder`` accepts (all of them if it takes ``**kwargs``)."""
    params = inspect.signature(builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return channels
    return {k: v for k, v in channels.items() if k in params}


def _build(registry: Registry, cfg: NetConfig, **channels: int) -> nn.Module:
    builder = registry.get(cfg.name)
    net = builder(**_channel_kwargs(builder, **channels), **cfg.params)
    # init first, so spectral norm's power iteration starts from the final weights
    init_weights(net, cfg.init, cfg.init_gain)
    if cfg.spectral_norm:
        apply_spectral_norm(net)
    return net


def build_generator(cfg: NetConfig, in_channels: int, out_channels: int) -> nn.Module:
    """Generator ``cfg.name`` built with ``cfg.params``, initialized, optionally spectral-normed.

    A generator without a ``size_multiple`` attribute gets ``size_multiple = 1``.
    """
    net = _build(GENERATORS, cfg, in_channels=in_channels, out_channels=out_channels)
    if not isinstance(getattr(net, "size_multiple", None), int):
        net.size_multiple = 1
    return net


def build_discriminator(cfg: NetConfig, in_channels: int) -> nn.Module:
    """Discriminator ``cfg.name`` built with ``cfg.params``, initialized, optionally spectral-normed."""
    return _build(DISCRIMINATORS, cfg, in_channels=in_channels)
