"""YAML and config trees of bounded size: no alias bomb, no nesting deeper than a config needs.

A few hundred bytes of nested YAML aliases ("billion laughs") stand for billions of
values once a tree is merged, copied or written out, and ``<<`` merge keys expand
them while the file is read; a checkpoint's pickled config can share objects the
same way.  Every YAML text i2i reads goes through :func:`load_yaml`, which measures
the document with its aliases expanded before building it, and a config a
checkpoint holds through :func:`check_tree`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import yaml

from ..errors import ConfigError

MAX_VALUES = 100_000  #: values of a tree with its aliases expanded (a config has a few hundred)
MAX_DEPTH = 50  #: levels of nesting (a config has about five)


def _expanded_size(root: Any, children: Callable[[Any], Iterable[Any] | None], where: str) -> int:
    """Values under ``root`` with shared parts counted each time they are used; ConfigError beyond the bounds."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Any, depth: int) -> int:
        kids = children(node)
        if kids is None:
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise ConfigError(f"{where}: a value contains itself (a recursive alias)")
        if depth >= MAX_DEPTH:
            raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        open_.add(key)
        total = 1
        for kid in kids:
            total += size(kid, depth + 1)
            if total > MAX_VALUES:
                raise ConfigError(f"{where}: more than {MAX_VALUES} values once its aliases are expanded "
                                  "(an alias bomb?)")
        open_.discard(key)
        sizes[key] = total
        return total

    return size(root, 0)


def _node_children(node: yaml.Node) -> Iterable[yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return None


def _tree_children(value: Any) -> Iterable[Any] | None:
    if isinstance(value, dict):
        return [part for pair in value.items() for part in pair]
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    return None


def load_yaml(text: str, where: str) -> Any:
    """The value of one YAML document (safe tags only).  ConfigError naming ``where`` if it holds more than
    :data:`MAX_VALUES` values with its aliases expanded or nests deeper than :data:`MAX_DEPTH`; invalid YAML
    raises ``yaml.YAMLError`` (or ValueError for a date that is none), as ``yaml.safe_load`` does."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, _node_children, where)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to read") from None
    finally:
        loader.dispose()


def check_tree(tree: Any, where: str) -> None:
    """ConfigError naming ``where`` if a tree of dicts and lists (a checkpoint's config) is beyond the bounds
    of :func:`load_yaml` (shared or recursive parts counted as YAML aliases are)."""
    _expanded_size(tree, _tree_children, where)
