"""The configs shipped inside the package (``i2i/configs/*.yaml``), found by name.

``--config NAME`` and ``base: NAME`` name a file; where no file of that name
exists, a bare name (``quickstart`` or ``quickstart.yaml``) means the shipped
config.  An existing path always wins.
"""
from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import ConfigError

SHIPPED = Path(__file__).resolve().parent.parent / "configs"


def shipped_configs() -> dict[str, Path]:
    """``{name: path}`` of the shipped configs, sorted by name."""
    return {p.stem: p for p in sorted(SHIPPED.glob("*.yaml"))}


def summary(path: Path) -> str:
    """The first comment line of a config, without its ``#``."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("#"):
                return line.strip().lstrip("#").strip()
    return ""


def _bare(name: str) -> bool:
    return bool(name) and Path(name).name == name and name not in (".", "..")


def shipped_name(name: str) -> str | None:
    """The shipped config a bare ``name`` (with or without ``.yaml``) means, or None."""
    if not _bare(name):
        return None
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    return stem if stem in shipped_configs() else None


def find_config(name: str | Path, folder: str | Path = ".") -> Path:
    """The file ``name`` means: ``folder/name`` if it is a file, else the shipped config of that name.

    Otherwise a one-line :class:`ConfigError` (exit 2) names the path looked for and,
    for a bare name, the closest shipped config.
    """
    given = Path(name)
    path = given if given.is_absolute() else Path(folder) / given
    if path.is_file():
        return path
    stem = shipped_name(str(name))
    if stem is not None:
        return shipped_configs()[stem]
    names = list(shipped_configs())
    base = given.name[: -len(".yaml")] if given.name.endswith(".yaml") else given.name
    hint = ""
    if _bare(str(name)):
        close = difflib.get_close_matches(base, names, n=1)
        mean = f"did you mean {close[0]!r}? " if close else ""
        hint = f" (not a shipped config either: {mean}i2i-train --list-configs lists them)"
    elif base in names:
        hint = f" (the shipped config of that name is --config {base})"
    shown = str(path) if str(path).isprintable() else repr(str(path))  # the message stays one line
    raise ConfigError(f"config file not found: {shown}{hint}")
