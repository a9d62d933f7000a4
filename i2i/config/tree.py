"""Config trees: YAML with ``base:``, ``--set`` overrides, merging, and typed reading.

A config is first a plain tree (nested dicts, as in YAML); :func:`make_config`
merges the defaults under it and reads it into the dataclasses of
:mod:`i2i.config.schema`, checking every key, type and range on the way.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import math
import operator
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..errors import ConfigError
from .bounded import load_yaml
from .schema import OPEN, SHORTHAND, Config, ModelSettings
from .shipped import find_config


# --------------------------------------------------------------------------- dict <-> dataclass
def _open_field(cls: type) -> str | None:
    return next((f for c, f in OPEN.items() if issubclass(cls, c)), None)


def _shorthand_field(cls: type) -> str | None:
    return next((f for c, f in SHORTHAND.items() if issubclass(cls, c)), None)


def to_dict(obj: Any) -> Any:
    """Plain nested dict of a config, open sections written flat (as in YAML)."""
    if dataclasses.is_dataclass(obj):
        out: dict = {}
        for f in dataclasses.fields(obj):
            value = to_dict(getattr(obj, f.name))
            if _open_field(type(obj)) == f.name:
                out.update(value)
            else:
                out[f.name] = value
        return out
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


# sections replaced, not merged, when their tag changes (their other keys belong to the old builder)
_REPLACE_ON_CHANGE = {"model": "name", "nets.*": "name", "losses.gan": "name", "losses.penalty": "type"}


# the field a section written as a string stands for (``model: unit`` is ``model: {name: unit}``)
_SHORTHAND_FIELD = {**_REPLACE_ON_CHANGE, "optim.*": "type"}


def _tag(path: str, table: dict = _REPLACE_ON_CHANGE) -> str | None:
    return next((tag for pattern, tag in table.items() if fnmatch.fnmatchcase(path, pattern)), None)


def merge(base: dict, over: dict, _path: str = "") -> dict:
    """Deep merge of ``over`` onto ``base``; a network or loss whose ``name`` changes is replaced."""
    out = dict(base)
    for key, value in over.items():
        path = f"{_path}.{key}" if _path else str(key)
        old = out.get(key)
        tag = _tag(path)
        if isinstance(old, dict) and isinstance(value, str):
            value = {tag or ("type" if "type" in old else "name"): value}
        if isinstance(old, str) and isinstance(value, dict) and _tag(path, _SHORTHAND_FIELD):
            old = {_tag(path, _SHORTHAND_FIELD): old}  # settings over a shorthand keep the name it gave
        if isinstance(old, dict) and isinstance(value, dict):
            if tag and tag in value and tag in old and value[tag] != old[tag]:
                out[key] = dict(value)
            else:
                out[key] = merge(old, value, path)
        else:
            out[key] = value
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin is dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        return {str(k): _coerce(v, item, f"{path}.{k}") for k, v in value.items()}
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is str and isinstance(value, bool):  # YAML 1.1 reads off/on/no/yes as booleans
        return "on" if value else "off"
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # more than 308 digits
            raise ConfigError(f"{path}: expected a finite number, got an integer too large for a float") from None
    if tp is float and isinstance(value, str):  # YAML reads 1e-4 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    check = {"list": list, "dict": dict}.get(tp, tp) if isinstance(tp, str) else tp
    if check in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{path}: expected {_type_name(check)}, got {value!r}")
    if isinstance(check, type) and not isinstance(value, check):
        raise ConfigError(f"{path}: expected {_type_name(check)}, got {type(value).__name__} {value!r}")
    if check is float and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    return value


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def check_rules(path: str, value: Any, rules: dict) -> None:
    """The ``rule(...)`` checks of one field (for lists: the length, then every item)."""
    if not rules:
        return
    if "length" in rules and isinstance(value, list):
        if len(value) != rules["length"]:
            raise ConfigError(f"{path}: expected {rules['length']} values, got {value!r}")
    for item in value if isinstance(value, list) else [value]:
        if "choices" in rules and item not in rules["choices"]:
            choices = [str(c) for c in rules["choices"]]
            close = difflib.get_close_matches(str(item), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: {item!r} is not one of {', '.join(choices)}{hint}")
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        for op, word in _BOUNDS.items():
            if op in rules and not getattr(operator, op)(item, rules[op]):
                raise ConfigError(f"{path}: must be {word} {rules[op]}, got {value!r}")


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys, wrong types and values out of range raise ConfigError."""
    short = _shorthand_field(cls)
    if isinstance(data, str) and short:
        data = {short: data}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    open_field = _open_field(cls)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields or key == open_field:
            if open_field:
                if not isinstance(key, str):  # YAML reads `1: x` with an int key; a keyword argument needs a name
                    raise ConfigError(f"{path or 'config'}: parameter name {key!r} is not a string")
                extra[key] = value
                continue
            raise ConfigError(unknown_key(key_path, key, list(fields)))
        value = _coerce(value, hints[key], key_path)
        check_rules(key_path, value, dict(fields[key].metadata))
        kwargs[key] = value
    if open_field:
        kwargs[open_field] = extra
    return cls(**kwargs)


def unknown_key(key_path: str, key: str, valid: Iterable[str]) -> str:
    msg = f"unknown config key {key_path!r}"
    close = difflib.get_close_matches(str(key), list(valid), n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg


# --------------------------------------------------------------------------- reading
def read_yaml(path: str | Path, files: list[Path] | None = None, _seen: tuple = ()) -> dict:
    """Read a YAML config, following ``base:`` links (relative to the file).

    A name that is not a file, there or in the working folder, is a shipped config
    (:func:`~i2i.config.shipped.find_config`); ``files`` collects the files read, the given one first.
    """
    path = find_config(path)
    if files is not None:
        files.append(path)
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = load_yaml(path.read_text(), str(path)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    except UnicodeDecodeError:  # (a ValueError)
        raise ConfigError(f"{path}: not a text file (not UTF-8); give a YAML config") from None
    except ValueError as exc:  # a value that looks like a date but is none: 2024-13-01
        raise ConfigError(f"{path}: invalid YAML value ({_one_line(exc)})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    base = data.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file or shipped config name, got {base!r}")
    if base:
        try:
            base_path = find_config(base, path.parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: base: {exc}") from None
        data = merge(read_yaml(base_path, files, _seen + (path.resolve(),)), data)
    return data


def parse_overrides(items: Iterable[str]) -> dict:
    """``["optim.G.lr=1e-4", "data.root=/x"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE")
        key, raw = item.split("=", 1)
        try:
            value = load_yaml(raw, f"--set {key}") if raw != "" else ""
        except (yaml.YAMLError, ValueError):  # ValueError: a date that is none, 2024-13-01
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.setdefault(part, {}), dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set to a value earlier on the command line")
            node = node[part]
        node[parts[-1]] = value
    return out


def model_name(tree: dict) -> str:
    model = tree.get("model", {})
    if model is None or isinstance(model, (str, dict)):
        name = model if isinstance(model, str) else (model or {}).get("name", ModelSettings.name)
        if isinstance(name, str):
            return name
        raise ConfigError(f"model.name: expected str, got {type(name).__name__} {name!r}")
    raise ConfigError(f"model: expected a mapping or a model name, got {model!r}")


def expand_group_defaults(tree: dict, groups: Sequence[str]) -> dict:
    """``optim.default`` applies to every optimizer group, under the group's own keys."""
    optim = tree.get("optim")
    if not isinstance(optim, dict) or "default" not in optim:
        return tree
    optim = dict(optim)
    default = optim.pop("default")
    if isinstance(default, str):
        default = {"type": default}
    if not isinstance(default, dict):
        raise ConfigError(f"optim.default: expected a mapping, got {default!r}")
    for group in groups:
        own = optim.get(group, {})
        if own is not None and not isinstance(own, (str, dict)):
            raise ConfigError(f"optim.{group}: expected a mapping, got {own!r}")
        optim[group] = merge(default, {"type": own} if isinstance(own, str) else own or {})
    return {**tree, "optim": optim}


def _key(key: Any) -> str:
    """A key as written in a message: plain if it is a printable name, else quoted (one line whatever it holds)."""
    return key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else repr(key)


def _one_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), type(exc).__name__)


def _check_names(section: str, given: Iterable[str], valid: Sequence[str], what: str) -> None:
    for key in given:
        if key not in valid:
            close = difflib.get_close_matches(str(key), list(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{section}.{_key(key)}: unknown {what}{hint}; this model's are: {', '.join(valid)}")


def make_config(tree: dict, settings: type = ModelSettings, defaults: dict | None = None,
                roles: Sequence[str] = (), groups: Sequence[str] = ()) -> Config:
    """Typed config from ``defaults <- model defaults <- tree``.

    ``settings`` is the model's settings dataclass (the ``model:`` section),
    ``roles`` its network roles (the keys of ``nets:``), ``groups`` its optimizer
    groups (the keys of ``optim:``).  Types and ranges are checked here; names of
    registered things are checked by their owners (see :mod:`i2i.configure`).
    """
    tree = expand_group_defaults(tree, groups)
    base = to_dict(Config())
    base["model"] = to_dict(settings())
    base["optim"] = {g: {} for g in groups}
    resolved = merge(merge(base, defaults or {}), tree)
    for section, names, what in (("nets", roles, "network role"), ("optim", groups, "optimizer group")):
        if not isinstance(resolved.get(section), dict):
            raise ConfigError(f"{section}: expected a mapping of {what}s, got {resolved.get(section)!r}")
        _check_names(section, resolved[section], names, what)
    for role in roles:
        if role not in resolved["nets"]:
            raise ConfigError(f"nets.{role}: not set (this model's network roles: {', '.join(roles)})")
    model_tree = resolved.pop("model")
    cfg = from_dict(Config, {**resolved, "model": {}})
    cfg.model = from_dict(settings, model_tree, "model")
    _check_relations(cfg)
    return cfg


def _check_relations(cfg: Config) -> None:
    """Checks that involve two fields."""
    d, t = cfg.data, cfg.train
    if d.preprocess in ("resize_and_crop", "scale_width") and d.crop_size > d.load_size:
        raise ConfigError(f"data.crop_size: {d.crop_size} is larger than data.load_size {d.load_size}")
    if t.epochs + t.epochs_decay == 0 and t.max_steps == 0:
        raise ConfigError("train.epochs: epochs + epochs_decay is 0 and train.max_steps is 0: nothing to train")
    name = Path(t.name) if t.name else None
    if name is not None and (name.is_absolute() or ".." in name.parts or t.name.strip() in (".", "")):
        raise ConfigError(f"train.name: {t.name!r} must name a folder inside train.out_dir")
    if cfg.eval.every and not cfg.eval.root:  # the validation split of the training data
        cfg.eval.root = cfg.data.root


_STAMP = "# written by i2i-train; sha256 {} of the lines below (an edit is noticed on --resume)\n"


def _digest(body: str) -> str:
    import hashlib

    return hashlib.sha256(body.encode()).hexdigest()[:16]


def save_config(cfg: Config, path: str | Path, source: str = "") -> None:
    """Write the resolved config, stamped with a checksum so that a later edit of the file is noticed;
    ``source`` (where the config came from) goes into a comment line."""
    from ..utils import atomic_write_text

    body = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    if source:
        body = f"# config: {source if source.isprintable() else repr(source)}\n" + body
    atomic_write_text(path, _STAMP.format(_digest(body)) + body)


def edited_since_saved(text: str) -> bool | None:
    """Whether a file written by :func:`save_config` was changed since (None: it carries no stamp)."""
    first, _, body = text.partition("\n")
    head, sep, tail = _STAMP.partition("{}")
    if not (first + "\n").startswith(head) or not first.endswith(tail.rstrip("\n")):
        return None
    return first[len(head): len(first) - len(tail.rstrip("\n"))] != _digest(body)
