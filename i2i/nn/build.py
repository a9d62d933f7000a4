"""Build a network (generator, discriminator, projection head) from its config section: registry builder,
spectral norm, weight init."""
from __future__ import annotations

import inspect
import warnings

from torch import nn

from ..config import NetConfig, from_dict, unknown_key
from ..errors import ConfigError
from ..registry import DISCRIMINATORS, GENERATORS, HEADS, Registry
from .init import apply_spectral_norm, init_weights
from .norms import NORMS

_CHANNELS = ("in_channels", "out_channels")


def check_net(path: str, cfg: NetConfig, registry: Registry) -> None:
    """One-line ConfigError for an unknown builder, keyword or norm of network section ``path``."""
    if cfg.name not in registry:
        raise ConfigError(f"{path}.name: {registry._unknown(cfg.name)}")
    params = registry.parameters(cfg.name)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = [k for k in params if k not in _CHANNELS]
        for key in cfg.params:
            if key not in allowed:
                raise ConfigError(unknown_key(f"{path}.{key}", key, allowed + ["init", "init_gain", "spectral_norm"]))
    norm = cfg.params.get("norm")
    if norm is not None and norm not in NORMS:
        raise ConfigError(f"{path}.norm: {norm!r} is not one of {', '.join(NORMS)}")
    for key, value in cfg.params.items():
        if key in params:
            _check_type(f"{path}.{key}", value, params[key].default)


def _check_type(path: str, value, default) -> None:
    """A value of the kind of the builder's default: a bool for a bool, a number for a number (an int for an
    int; lists are left to the builder, which may take one in place of a number)."""
    if isinstance(default, bool) or isinstance(value, (list, tuple)) or default is None:
        ok = not isinstance(default, bool) or isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{path}: expected {type(default).__name__}, got {type(value).__name__} {value!r}")


def _channel_kwargs(builder, **channels: int) -> dict[str, int]:
    """The channel arguments ``builder`` accepts (all of them if it takes ``**kwargs``)."""
    params = inspect.signature(builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return channels
    return {k: v for k, v in channels.items() if k in params}


def _build(registry: Registry, cfg: NetConfig, **channels: int) -> nn.Module:
    builder = registry.get(cfg.name)
    try:
        with warnings.catch_warnings():  # a width of 0 is refused below, in one line
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            net = builder(**_channel_kwargs(builder, **channels), **cfg.params)
    except (ValueError, TypeError, RuntimeError) as exc:  # a value the builder refuses (torch: a negative width)
        raise _refused(cfg, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc
    empty = next((name for name, p in net.named_parameters() if p.numel() == 0), None)
    if empty is not None:  # a width of 0: the net builds, but no forward pass runs
        raise _refused(cfg, f"layer {empty} would have no weights (shape {'x'.join(map(str, net.get_parameter(empty).shape))})")
    # init first, so spectral norm's power iteration starts from the final weights
    init_weights(net, cfg.init, cfg.init_gain)
    if callable(getattr(net, "after_init", None)):  # a net whose starting point matters sets it again
        net.after_init()
    if cfg.spectral_norm:
        apply_spectral_norm(net)
    return net


def _refused(cfg: NetConfig, why: str) -> ConfigError:
    given = ", ".join(f"{k}={v!r}" for k, v in cfg.params.items())
    return ConfigError(f"network {cfg.name!r}" + (f" ({given})" if given else "") + f": {why}")


def net_config(cfg: NetConfig | str | dict, path: str) -> NetConfig:
    """``cfg`` as a checked :class:`NetConfig`: one already, a builder name, or a mapping written like a
    ``nets:`` section of a YAML config (``{"name": "unet_256", "ngf": 32, "init": "xavier"}``)."""
    if isinstance(cfg, NetConfig):
        return cfg
    if isinstance(cfg, (str, dict)):
        return from_dict(NetConfig, cfg, path)
    raise ConfigError(f"{path}: expected a NetConfig, a network name or a mapping, got {type(cfg).__name__}")


def build_generator(cfg: NetConfig | str | dict, in_channels: int, out_channels: int) -> nn.Module:
    """Generator ``cfg.name`` built with ``cfg.params``, initialized, optionally spectral-normed
    (``cfg``: see :func:`net_config`).

    A generator without a ``size_multiple`` attribute gets ``size_multiple = 1``.
    """
    cfg = net_config(cfg, "generator")
    net = _build(GENERATORS, cfg, in_channels=in_channels, out_channels=out_channels)
    if not isinstance(getattr(net, "size_multiple", None), int):
        net.size_multiple = 1
    return net


def build_discriminator(cfg: NetConfig | str | dict, in_channels: int) -> nn.Module:
    """Discriminator ``cfg.name`` built with ``cfg.params``, initialized, optionally spectral-normed
    (``cfg``: see :func:`net_config`)."""
    cfg = net_config(cfg, "discriminator")
    return _build(DISCRIMINATORS, cfg, in_channels=in_channels)


def build_head(cfg: NetConfig | str | dict, in_channels: list[int]) -> nn.Module:
    """Projection head ``cfg.name`` (:mod:`i2i.nn.heads`) for features of ``in_channels`` channels, one count
    per tapped layer, built and initialized like the other networks."""
    cfg = net_config(cfg, "head")
    return _build(HEADS, cfg, in_channels=list(in_channels))
