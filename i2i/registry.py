"""Name -> builder registries: one small mechanism for nets, losses, models, datasets.

A registry maps a name (as written in a YAML config) to a callable that builds
the object.  Third-party code registers its own builders with the decorator::

    from i2i.registry import GENERATORS

    @GENERATORS.register("my_gen")
    def my_gen(in_channels=3, out_channels=3, width=32):
        ...

and then writes ``nets: {G: {name: my_gen, width: 16}}`` in a config.

Each registry knows the packages (or modules) that hold its built-in entries and
imports them the first time it is looked up, so a name is found whatever was imported
before (no import-order tricks).  User code is imported by ``--import
MODULE`` on the command line or the ``i2i.plugins`` entry-point group (see
:mod:`i2i.plugins`).
"""
from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable, Iterator


class RegistryError(KeyError):
    """Unknown name, or a duplicate registration."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


class Registry:
    """A named table of builders."""

    def __init__(self, kind: str, builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}
        self._builtins = builtins  # modules registering the built-in entries, imported on first lookup
        self._loaded = not builtins

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def register(self, name: str | None = None, *, override: bool = False):
        """Decorator registering ``fn`` under ``name`` (default: its ``__name__``)."""

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            key = name or fn.__name__
            if key in self._builders and not override:
                raise RegistryError(f"{self.kind} {key!r} is already registered")
            self._builders[key] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        self._load_builtins()
        try:
            return self._builders[name]
        except KeyError:
            raise RegistryError(self._unknown(name)) from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._builders)

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, self.names(), n=1)
        return close[0] if close else None

    def _unknown(self, name: str) -> str:
        hint = self.suggest(str(name))
        msg = f"unknown {self.kind} {name!r}"
        if hint:
            msg += f" (did you mean {hint!r}?)"
        return msg + f"; known: {', '.join(self.names())}"

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """Keyword parameters the builder accepts (used to validate configs)."""
        return dict(inspect.signature(self.get(name)).parameters)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_builtins()
        return len(self._builders)


# the built-ins: a package imports its own modules, listed in its __init__.py only (i2i/nn, i2i/models ...)
GENERATORS = Registry("generator", ("i2i.nn", "i2i.dehaze.physics"))
DISCRIMINATORS = Registry("discriminator", ("i2i.nn",))
HEADS = Registry("projection head", ("i2i.nn",))
GAN_LOSSES = Registry("GAN loss", ("i2i.losses",))
PENALTIES = Registry("penalty", ("i2i.losses",))
MODELS = Registry("model", ("i2i.models",))
DATASETS = Registry("dataset kind", ("i2i.data.datasets",))
METRICS = Registry("metric", ("i2i.metrics",))
