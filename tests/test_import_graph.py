"""The import graph of the package has no circle (function-local imports included)."""
import ast
from pathlib import Path

import i2i

ROOT = Path(i2i.__file__).parent


def _module_files() -> dict[str, Path]:
    files = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return files


def import_graph() -> dict[str, set[str]]:
    """module -> the i2i modules it imports anywhere in its body (``from . import x`` names ``x``), but for type
    checkers only (``if TYPE_CHECKING:``, never run)."""
    files = _module_files()
    graph = {}
    for name, f in files.items():
        package = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        tree = ast.parse(f.read_text(), str(f))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                       for statement in block.body for n in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (".".join(package[:len(package) - node.level + 1] + [node.module] * bool(node.module))
                        if node.level else node.module)
                wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in files:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as a path that ends where it starts, or None (depth-first search)."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_circle_finds_one_and_only_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "i2i.translator" in graph["i2i"] and "i2i.errors" in graph["i2i.engine.checkpoint"]  # local, relative
    assert "i2i.engine.trainer" not in graph["i2i.engine.hooks"]  # (named for type checkers only)
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


def test_the_version_has_one_source():
    from i2i._version import __version__

    assert i2i.__version__ == __version__
    assert 'attr = "i2i._version.__version__"' in (ROOT.parent / "pyproject.toml").read_text()
