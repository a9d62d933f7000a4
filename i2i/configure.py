"""From a YAML tree to a checked run config: the model's defaults, then each part checks its names.

:mod:`i2i.config` reads types and ranges; here the translator named in
``model.name`` contributes its settings dataclass, network roles, optimizer
groups and defaults, and the packages that own a vocabulary check it: network
builders and norms (:mod:`i2i.nn`), GAN objectives and penalties
(:mod:`i2i.losses`), dataset kinds (:mod:`i2i.data`), metrics
(:mod:`i2i.metrics`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from .config import Config, expand_group_defaults, make_config, merge, model_name, parse_overrides, read_yaml
from .config.bounded import check_tree
from .errors import ConfigError
from .plugins import check_allowed, load_plugins
from .registry import MODELS


def model_class(name: str):
    if name not in MODELS:
        raise ConfigError(f"model.name: {MODELS._unknown(name)}")
    return MODELS.get(name)


def build_config(tree: dict, overrides: Iterable[str] = (), check_paths: bool = True) -> Config:
    """Defaults <- the model's defaults <- ``tree`` <- ``overrides`` (``--set``), typed and checked, in one pass:
    the plugins of ``imports:`` are loaded and the translator class is resolved once, then ``optim.default``
    is expanded in each layer (so that a ``--set`` of it reaches every group).

    ``check_paths=False`` skips the data-folder checks (loading a checkpoint's
    config on a machine that does not have its training data).
    """
    over = parse_overrides(overrides)
    both = merge(tree, over)
    load_plugins(_imports(both), "imports:")
    cls = model_class(model_name(both))
    groups = tuple(cls.groups)
    tree = merge(expand_group_defaults(tree, groups), expand_group_defaults(over, groups))
    cfg = make_config(tree, cls.Settings, cls.defaults, tuple(cls.roles), groups)
    validate(cfg, cls, check_paths)
    return cfg


def _imports(tree: dict) -> list[str]:
    imports = tree.get("imports") or []
    if isinstance(imports, str):
        imports = [imports]
    if not isinstance(imports, list):
        raise ConfigError(f"imports: expected a list of modules, got {imports!r}")
    return [str(m) for m in imports]


def validate(cfg: Config, cls, check_paths: bool = True) -> None:
    from .data import check_data_config
    from .losses import check_losses
    from .metrics import check_metric_names
    from .nn import check_net

    for role, registry in cls.roles.items():
        check_net(f"nets.{role}", cfg.nets[role], registry)
    check_losses(cfg.losses)
    check_data_config(cfg.data, "data", check_paths)
    if cls.two_domains and cfg.data.kind == "single":
        raise ConfigError(f"data.kind: {cfg.model.name} trains on images of two domains (unpaired, aligned or paired), "
                          "not single")
    if cfg.eval.every:
        from dataclasses import replace

        check_data_config(replace(cfg.data, root=cfg.eval.root), "eval", check_paths)
        check_metric_names(list(cfg.eval.metrics), "eval.metrics", cfg.eval.best)
    cls.check_config(cfg, check_paths)


def check_model_fit(cfg: Config, model) -> None:
    """Checks that need the built model: each generator takes the training crops (a multiple of its size
    multiple), or with ``data.preprocess: none`` the sizes images are rounded to (``data.size_multiple``)."""
    for direction in model.directions:
        multiple = model.size_multiple(direction)
        if cfg.data.preprocess == "none":
            if cfg.data.size_multiple % multiple:
                need = math.lcm(cfg.data.size_multiple, multiple)
                raise ConfigError(f"data.size_multiple: {cfg.data.size_multiple} is not a multiple of {multiple}, the "
                                  f"size multiple of the {direction} generator (data.preprocess: none rounds each "
                                  f"image's sizes to it); use {need}")
        elif cfg.data.crop_size % multiple:
            lower, upper = cfg.data.crop_size // multiple * multiple, -(-cfg.data.crop_size // multiple) * multiple
            raise ConfigError(f"data.crop_size: {cfg.data.crop_size} is not a multiple of {multiple}, the size multiple "
                              f"of the {direction} generator; use " + (f"{lower} or {upper}" if lower else f"{upper}"))


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                files: list[Path] | None = None) -> Config:
    """The checked config of the file ``path`` (or a shipped config's name) with ``overrides`` (``--set``);
    ``files`` collects the files read (see :func:`~i2i.config.read_yaml`)."""
    tree = read_yaml(path, files) if path else {}
    cfg = build_config(tree, overrides)
    if path and not cfg.train.name:
        cfg.train.name = Path(path).stem
    return cfg


def upgrade_v1(tree: dict) -> dict:
    """A config saved by i2i 0.1 (checkpoint format 1) in the current form.

    0.1 had ``nets.generator`` / ``nets.discriminator``, the model weights in
    ``losses`` (``l1``, ``cycle``, ``identity``: each model takes its own into ``model:``,
    :meth:`~i2i.models.Model.upgrade_settings`), and one Adam setting in ``train``
    (``lr``, ``lr_d``, ``beta1``, ``beta2``, ``lr_policy``, ``lr_step_epochs``,
    ``lr_gamma``, ``n_critic``); the network and optimizer state keys are unchanged.
    """
    tree = {k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()}
    nets = tree.get("nets", {})
    tree["nets"] = {{"generator": "G", "discriminator": "D"}.get(k, k): v for k, v in nets.items()}
    losses, model, train = tree.get("losses", {}), tree.get("model", {}), tree.get("train", {})
    if model.get("name") in MODELS:  # (an unknown name is refused when the config is built)
        model = MODELS.get(model["name"]).upgrade_settings(1, dict(model), dict(losses))
    for old in ("l1", "cycle", "identity"):
        losses.pop(old, None)
    losses["n_critic"] = train.pop("n_critic", 1)
    lr, lr_d = train.pop("lr", 2e-4), train.pop("lr_d", 0.0)
    group = {"type": "adam", "betas": [train.pop("beta1", 0.5), train.pop("beta2", 0.999)],
             "schedule": train.pop("lr_policy", "linear"), "step_size": train.pop("lr_step_epochs", 50),
             "gamma": train.pop("lr_gamma", 0.1)}
    tree["optim"] = {"G": {**group, "lr": lr}, "D": {**group, "lr": lr_d or lr}}
    tree.update(losses=losses, model=model, train=train)
    return tree


def config_of_checkpoint(state: dict, overrides: Iterable[str] = (), check_paths: bool = True,
                         imports: Iterable[str] = (), trust_imports: bool = False,
                         source: str = "the checkpoint") -> Config:
    """The checked config a checkpoint was trained with (older formats upgraded), ``--set`` on top.

    The saved ``imports:`` run only if each is in ``imports`` (or ``--set imports=...``) or
    ``trust_imports``; else :class:`UntrustedCodeError` names them, before anything is imported.
    """
    tree = state["config"]
    check_tree(tree, "config")
    if state.get("format", 1) < 2:
        tree = upgrade_v1(tree)
    over = parse_overrides(overrides)
    check_allowed(_imports(merge(tree, over)), [*imports, *_imports(over)], trust_imports, source)
    return build_config(tree, overrides, check_paths=check_paths)
