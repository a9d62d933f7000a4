"""Typed configuration: dataclasses, YAML loading, ``--set`` overrides, validation.

A run is described by one YAML file with the sections ``model``, ``nets``,
``losses``, ``data``, ``train``, ``log`` and ``eval``.  Every field has a default
(below, with its meaning); a model adds its own canonical defaults (for example
CycleGAN switches the GAN loss to ``lsgan``), then the file, then the command
line overrides are applied, in that order.  ``base: other.yaml`` makes a file
inherit from another one (paths relative to the file).

Network sections are open: besides ``name``, ``init``, ``init_gain`` and
``spectral_norm`` they take the keyword arguments of the registered builder
(``ngf``, ``norm``, ``n_layers`` ...), checked against its signature.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import ConfigError


# --------------------------------------------------------------------------- sections
@dataclass
class ModelConfig:
    name: str = "pix2pix"  #: registered translator (pix2pix, cyclegan, ...)
    pool_size: int = 0  #: image pool of past fakes shown to D (0 = off; CycleGAN 50)
    test_batch_stats: bool = False  #: inference normalizes with the test batch's statistics, dropout on (pix2pix)


@dataclass
class NetConfig:
    name: str = "unet_256"  #: registered network builder
    init: str = "normal"  #: weight init: normal, xavier, kaiming, orthogonal
    init_gain: float = 0.02  #: std (normal) or gain (others)
    spectral_norm: bool = False  #: wrap conv/linear weights with spectral normalization
    params: dict = field(default_factory=dict)  #: builder keyword arguments (written flat in YAML)


@dataclass
class NetsConfig:
    generator: NetConfig = field(
        default_factory=lambda: NetConfig("unet_256", params={"ngf": 64, "norm": "batch", "dropout": True})
    )
    discriminator: NetConfig = field(
        default_factory=lambda: NetConfig("patchgan", params={"ndf": 64, "n_layers": 3, "norm": "batch"})
    )


@dataclass
class PenaltyConfig:
    type: str = "none"  #: registered penalty (gp, lp, r1, r2, dragan, bcr) or none
    weight: float = 10.0  #: multiplier of the penalty in D's loss
    params: dict = field(default_factory=dict)  #: extra keyword arguments of the penalty


@dataclass
class GanLossConfig:
    name: str = "vanilla"  #: registered adversarial objective (vanilla, lsgan, hinge, wgangp, ...)
    params: dict = field(default_factory=dict)  #: its keyword arguments (written flat in YAML)


@dataclass
class LossConfig:
    gan: GanLossConfig = field(default_factory=GanLossConfig)  #: ``gan: hinge`` or ``gan: {name: lsgan, half: false}``
    l1: float = 100.0  #: pix2pix: weight of L1(G(A), B)
    cycle: float = 10.0  #: CycleGAN: weight of both cycle losses (lambda_A = lambda_B)
    identity: float = 0.5  #: CycleGAN: identity loss weight, as a fraction of ``cycle``
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)


@dataclass
class DataConfig:
    kind: str = "aligned"  #: aligned, paired, unpaired or single
    root: str = ""  #: dataset folder, or builtin:NAME for the generated data
    phase: str = "train"  #: sub-folder(s) to read: train -> train/ or trainA/ trainB/
    direction: str = "AtoB"  #: AtoB or BtoA
    in_channels: int = 3  #: channels of A images (1 = grayscale, 3 = RGB)
    out_channels: int = 3  #: channels of B images
    preprocess: str = "resize_and_crop"  #: resize_and_crop, scale_width, crop, none
    load_size: int = 286  #: resize to this size before cropping
    crop_size: int = 256  #: random crop size (train) / centre size (test)
    no_flip: bool = False  #: disable random horizontal flips
    batch_size: int = 1
    num_workers: int = 2  #: DataLoader worker processes (0 = load in the main process)
    max_items: int = 0  #: use at most this many images (0 = all)
    pair_regex: str = ""  #: paired: regex whose first group turns an A stem into its B stem
    #: paired/unpaired: the A and B folders under root, ``{phase}`` replaced by the phase
    #: (RESIDE layout: ``["{phase}/hazy", "{phase}/clear"]``)
    ab_dirs: list = field(default_factory=lambda: ["{phase}A", "{phase}B"])


@dataclass
class TrainConfig:
    epochs: int = 100  #: epochs at the initial learning rate
    epochs_decay: int = 100  #: further epochs with the lr policy applied (linear: to 0)
    max_steps: int = 0  #: stop after this many iterations (0 = run all epochs)
    time_budget_min: float = 0.0  #: stop after this many minutes of training (0 = no limit)
    lr: float = 2e-4  #: Adam learning rate of G (and of D unless lr_d is set)
    lr_d: float = 0.0  #: D learning rate (0 = same as lr)
    beta1: float = 0.5
    beta2: float = 0.999
    lr_policy: str = "linear"  #: linear, step, cosine or constant
    lr_step_epochs: int = 50  #: step policy: multiply by lr_gamma every this many epochs
    lr_gamma: float = 0.1
    n_critic: int = 1  #: D updates per G update
    amp: str = "off"  #: mixed precision: off, bf16, fp16 (fp16 needs CUDA)
    seed: int = 0
    device: str = "auto"  #: auto (cuda, mps, cpu), or an explicit torch device
    out_dir: str = "runs"  #: parent folder of run folders
    name: str = ""  #: run folder name (default: the config file's stem)
    checkpoint_every: int = 1000  #: steps between checkpoints (also at each epoch end and at the end)
    keep_last: int = 3  #: checkpoints kept on disk
    threads: int = 0  #: torch CPU threads (0 = torch's default)


@dataclass
class LogConfig:
    every: int = 50  #: steps between scalar logs (CSV/JSONL and TensorBoard)
    sample_every: int = 500  #: steps between PNG sample grids
    tensorboard: bool = True
    progress: bool = True  #: tqdm progress bar


@dataclass
class EvalConfig:
    every: int = 0  #: steps between evaluations (0 = off)
    root: str = ""  #: validation dataset folder (same layout as data.root)
    phase: str = "val"
    metrics: list = field(default_factory=lambda: ["psnr", "ssim"])
    best: str = ""  #: keep checkpoint best.pt by this metric ('' = off)
    max_items: int = 0  #: evaluate at most this many items (0 = all)
    palette: str = ""  #: seg metric: palette file (lines ``index R G B``)
    inception_weights: str = ""  #: fid/kid/is: local FID Inception weights file


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    nets: NetsConfig = field(default_factory=NetsConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# open sections: keys that are not fields go into ``params``
_OPEN = {NetConfig: "params", PenaltyConfig: "params", GanLossConfig: "params"}
# shorthand: ``model: cyclegan`` == ``model: {name: cyclegan}``
_SHORTHAND = {ModelConfig: "name", NetConfig: "name", PenaltyConfig: "type", GanLossConfig: "name"}


# --------------------------------------------------------------------------- dict <-> dataclass
def to_dict(obj: Any) -> Any:
    """Plain nested dict of a config, open sections written flat (as in YAML)."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = to_dict(getattr(obj, f.name))
            if _OPEN.get(type(obj)) == f.name:
                out.update(value)
            else:
                out[f.name] = value
        return out
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def merge(base: dict, over: dict) -> dict:
    """Deep merge; a section whose ``name``/``type`` changes is replaced, not merged."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, str):
            value = {_shorthand_key(old): value}
        if isinstance(old, dict) and isinstance(value, dict):
            tag = _shorthand_key(old)
            if tag in value and tag in old and value[tag] != old[tag]:
                out[key] = dict(value)
            else:
                out[key] = merge(old, value)
        else:
            out[key] = value
    return out


def _shorthand_key(d: dict) -> str:
    return "type" if "type" in d else "name"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if tp is str and isinstance(value, bool):  # YAML 1.1 reads off/on/no/yes as booleans
        return "on" if value else "off"
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    check = {"list": list, "dict": dict}.get(tp, tp) if isinstance(tp, str) else tp
    if check in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{path}: expected {_type_name(check)}, got {value!r}")
    if isinstance(check, type) and not isinstance(value, check):
        raise ConfigError(f"{path}: expected {_type_name(check)}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    if isinstance(data, str) and cls in _SHORTHAND:
        data = {_SHORTHAND[cls]: data}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in names or key == _OPEN.get(cls):
            if cls in _OPEN:
                extra[key] = value
                continue
            raise ConfigError(_unknown_key(key_path, key, names))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, key_path)
        else:
            kwargs[key] = _coerce(value, tp, key_path)
    if cls in _OPEN:
        kwargs[_OPEN[cls]] = extra
    return cls(**kwargs)


def _unknown_key(key_path: str, key: str, valid: Iterable[str]) -> str:
    msg = f"unknown config key {key_path!r}"
    close = difflib.get_close_matches(str(key), list(valid), n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg


# --------------------------------------------------------------------------- loading
def read_yaml(path: str | Path, _seen: tuple = ()) -> dict:
    """Read a YAML config, following ``base:`` links (relative to the file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    base = data.pop("base", None)
    if base:
        base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
        data = merge(read_yaml(base_path, _seen + (path.resolve(),)), data)
    return data


def parse_overrides(items: Iterable[str]) -> dict:
    """``["train.lr=1e-4", "data.root=/x"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _model_name(tree: dict) -> str:
    model = tree.get("model", {})
    return model if isinstance(model, str) else (model or {}).get("name", ModelConfig.name)


def build_config(tree: dict, check_paths: bool = True) -> Config:
    """Defaults <- model defaults <- ``tree``; typed and validated.

    ``check_paths=False`` skips the data-folder checks (loading a checkpoint's
    config on a machine that does not have its training data).
    """
    from .registry import MODELS
    from . import models as _models  # noqa: F401  (registers the built-in models)

    name = _model_name(tree)
    if name not in MODELS:
        raise ConfigError(f"model.name: {MODELS._unknown(name)}")
    defaults = merge(getattr(MODELS.get(name), "defaults", {}), {"model": {"name": name}})
    resolved = merge(merge(to_dict(Config()), defaults), tree)
    cfg = from_dict(Config, resolved)
    validate(cfg, check_paths)
    return cfg


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    tree = read_yaml(path) if path else {}
    tree = merge(tree, parse_overrides(overrides))
    cfg = build_config(tree)
    if path and not cfg.train.name:
        cfg.train.name = Path(path).stem
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    from .utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


# --------------------------------------------------------------------------- validation
def _choice(path: str, value: Any, choices: Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(choices)}{hint}")


def _positive(path: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{path}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _check_net(path: str, net: NetConfig, registry) -> None:
    if net.name not in registry:
        raise ConfigError(f"{path}.name: {registry._unknown(net.name)}")
    _choice(f"{path}.init", net.init, ["normal", "xavier", "kaiming", "orthogonal"])
    params = registry.parameters(net.name)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = [k for k in params if k not in ("in_channels", "out_channels")]
        for key in net.params:
            if key not in allowed:
                raise ConfigError(_unknown_key(f"{path}.{key}", key, allowed + ["init", "init_gain", "spectral_norm"]))
    if "norm" in net.params:
        _choice(f"{path}.norm", net.params["norm"], ["batch", "instance", "none"])


def validate(cfg: Config, check_paths: bool = True) -> None:
    """Semantic checks that must fail before any training starts."""
    from .registry import DATASETS, DISCRIMINATORS, GAN_LOSSES, GENERATORS, PENALTIES
    from . import data as _data, losses as _losses, nn as _nn  # noqa: F401  (register builders)

    _check_net("nets.generator", cfg.nets.generator, GENERATORS)
    _check_net("nets.discriminator", cfg.nets.discriminator, DISCRIMINATORS)
    if cfg.losses.gan.name not in GAN_LOSSES:
        raise ConfigError(f"losses.gan.name: {GAN_LOSSES._unknown(cfg.losses.gan.name)}")
    if cfg.losses.penalty.type != "none" and cfg.losses.penalty.type not in PENALTIES:
        raise ConfigError(f"losses.penalty.type: {PENALTIES._unknown(cfg.losses.penalty.type)}")
    _losses.build_gan_loss(cfg.losses.gan.name, **cfg.losses.gan.params)  # checks the parameters
    if cfg.losses.penalty.type != "none":
        _losses.build_penalty(cfg.losses.penalty.type, cfg.losses.penalty.weight, **cfg.losses.penalty.params)
    for key in ("l1", "cycle", "identity"):
        _positive(f"losses.{key}", getattr(cfg.losses, key), allow_zero=True)
    _positive("losses.penalty.weight", cfg.losses.penalty.weight, allow_zero=True)
    _positive("model.pool_size", cfg.model.pool_size, allow_zero=True)

    d = cfg.data
    if d.kind not in DATASETS:
        raise ConfigError(f"data.kind: {DATASETS._unknown(d.kind)}")
    _choice("data.direction", d.direction, ["AtoB", "BtoA"])
    _choice("data.preprocess", d.preprocess, ["resize_and_crop", "scale_width", "crop", "none"])
    _choice("data.in_channels", d.in_channels, [1, 3])
    _choice("data.out_channels", d.out_channels, [1, 3])
    for key in ("load_size", "crop_size", "batch_size"):
        _positive(f"data.{key}", getattr(d, key))
    _positive("data.num_workers", d.num_workers, allow_zero=True)
    if d.preprocess in ("resize_and_crop", "scale_width") and d.crop_size > d.load_size:
        raise ConfigError(f"data.crop_size: {d.crop_size} is larger than data.load_size {d.load_size}")
    if not d.root:
        raise ConfigError("data.root: not set (a dataset folder, or builtin:NAME)")
    if check_paths and not d.root.startswith("builtin:") and not Path(d.root).is_dir():
        raise ConfigError(f"data.root: folder not found: {d.root}")

    t = cfg.train
    _positive("train.lr", t.lr)
    _positive("train.lr_d", t.lr_d, allow_zero=True)
    for key in ("beta1", "beta2"):
        value = getattr(t, key)
        if not 0 <= value < 1:
            raise ConfigError(f"train.{key}: must be in [0, 1), got {value!r}")
    for key in ("epochs", "epochs_decay", "max_steps", "threads", "time_budget_min"):
        _positive(f"train.{key}", getattr(t, key), allow_zero=True)
    if t.epochs + t.epochs_decay == 0 and t.max_steps == 0:
        raise ConfigError("train.epochs: epochs + epochs_decay is 0 and train.max_steps is 0: nothing to train")
    for key in ("n_critic", "checkpoint_every", "keep_last", "lr_step_epochs"):
        _positive(f"train.{key}", getattr(t, key))
    _choice("train.lr_policy", t.lr_policy, ["linear", "step", "cosine", "constant"])
    _choice("train.amp", t.amp, ["off", "bf16", "fp16"])
    for key in ("every", "sample_every"):
        _positive(f"log.{key}", getattr(cfg.log, key))
    _positive("eval.every", cfg.eval.every, allow_zero=True)
    if cfg.eval.every and not cfg.eval.root:
        raise ConfigError("eval.root: eval.every is set but no validation folder is given")
    if check_paths and cfg.eval.every and not cfg.eval.root.startswith("builtin:") and not Path(cfg.eval.root).is_dir():
        raise ConfigError(f"eval.root: folder not found: {cfg.eval.root}")
    if cfg.eval.every:
        from .registry import METRICS
        from . import metrics as _metrics  # noqa: F401

        for i, name in enumerate(cfg.eval.metrics):
            if name not in METRICS:
                raise ConfigError(f"eval.metrics[{i}]: {METRICS._unknown(name)}")
