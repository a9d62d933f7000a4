"""User code that registers networks, losses, datasets or translators, imported before a config is read.

Three ways, all ending in ``importlib``: ``--import MODULE`` on ``i2i-train``,
``i2i-translate`` and ``i2i-eval`` (a dotted module name, or a ``.py`` file),
an ``imports: [MODULE, ...]`` list in the YAML config (saved with the run, so a
resume or a translation finds the same code), and the ``i2i.plugins``
entry-point group of installed packages.

A config the user names (``--config FILE``) is code they chose: its imports run.
A checkpoint, or a run's saved config, is data someone else may have made: its
imports run only where the user allows them for this command
(:func:`check_allowed`).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import Iterable

from .errors import ConfigError, UntrustedCodeError

_entry_points_loaded = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def import_module(name: str, what: str = "--import") -> None:
    """Import ``name`` (a dotted module, or a path to a ``.py`` file); ConfigError in one line if it fails."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise ConfigError(f"{what} {name}: file not found")
            digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
            mod_name = f"i2i_plugin_{path.stem}_{digest}"  # one module per file
            if mod_name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[mod_name]
                raise
        else:
            importlib.import_module(name)
    except (ConfigError, KeyboardInterrupt):
        raise
    except SystemExit as exc:  # an import that ends the program is a failed import, not the command's result
        raise ConfigError(f"{what} {name}: cannot import (it called sys.exit({exc.code!r}))") from None
    except BaseException as exc:
        raise ConfigError(f"{what} {name}: cannot import ({_first_line(exc)})") from None


def load_plugins(modules: Iterable[str] = (), what: str = "--import") -> None:
    """Import ``modules``, and once per process the ``i2i.plugins`` entry points."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in importlib.metadata.entry_points(group="i2i.plugins"):
            try:
                ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise ConfigError(f"plugin entry point {ep.name} ({ep.value}): cannot import ({_first_line(exc)})") from None
    for name in modules:
        import_module(str(name), what)


def _key(name: str) -> str:
    return str(Path(name).resolve()) if name.endswith(".py") else name


def check_allowed(asked: Iterable[str], allowed: Iterable[str], trust: bool, source: str) -> None:
    """UntrustedCodeError naming the modules of ``asked`` (the imports a file someone else made will run)
    that are not in ``allowed`` (the user's own list), unless ``trust``."""
    if trust:
        return
    given = {_key(str(m)) for m in allowed}
    missing = list(dict.fromkeys(str(m) for m in asked if _key(str(m)) not in given))
    if missing:
        flags = " ".join(f"--import {m}" for m in missing)
        raise UntrustedCodeError(
            f"{source} asks to import {', '.join(missing)} (its config's imports:), which would run that code; "
            f"allow it with {flags} or --trust-imports (in Python: imports=[...] or trust_imports=True)")
