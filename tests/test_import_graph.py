"""The import graph of the package has no circle (function-local imports included), and inference
(loading a translator, translating, evaluating, exporting, sampling) imports nothing of the training engine."""
import ast
import subprocess
import sys
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
    assert "i2i.translator" in graph["i2i"] and "i2i.errors" in graph["i2i.checkpoint"]  # local, relative
    assert "i2i.engine.trainer" not in graph["i2i.engine.hooks"]  # (named for type checkers only)
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


#: the modules of inference: the API, translation of one image and of many files, the exported folders and
#: reference-repository files, and the commands that only run a trained model
INFERENCE = ("i2i", "i2i.translator", "i2i.pipeline", "i2i.deploy", "i2i.reference",
             "i2i.cli.translate", "i2i.cli.eval", "i2i.cli.export", "i2i.cli.sample")


def reachable(graph: dict[str, set[str]], starts) -> set[str]:
    """Every module ``starts`` import, directly or through others (themselves included)."""
    seen, todo = set(), list(starts)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_reachable_follows_arrows_through_other_modules():
    assert reachable({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}, ["a"]) == {"a", "b", "c"}


def test_no_arrow_from_inference_into_the_training_engine():
    graph = import_graph()
    assert "i2i.engine.trainer" in reachable(graph, ["i2i.cli.train"])  # the engine is seen where it is used
    assert {"i2i.checkpoint", "i2i.runtime"} <= reachable(graph, ["i2i"])
    into_engine = {(m, t) for m in reachable(graph, INFERENCE) for t in graph[m] if t.startswith("i2i.engine")}
    assert not into_engine, sorted(into_engine)


def test_loading_a_translator_and_translating_import_no_training_code(tmp_path):
    import torch

    from i2i.checkpoint import save_checkpoint
    from i2i.config import to_dict
    from i2i.configure import build_config
    from i2i.models import build_model

    cfg = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"},
                        "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4}, "D": {"ndf": 4, "n_layers": 1}}})
    torch.manual_seed(0)
    save_checkpoint({"config": to_dict(cfg), "model": build_model(cfg).state_dict(), "step": 1}, tmp_path / "step_1.pt")
    code = ("import sys, numpy as np, i2i\n"
            f"out = i2i.load_translator({str(tmp_path / 'step_1.pt')!r}, device='cpu')(np.zeros((40, 36, 3), np.uint8))\n"
            "print(out.shape, sorted(m for m in sys.modules if m.startswith('i2i.engine')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "(40, 36, 3) []", proc.stdout


def test_the_version_has_one_source():
    from i2i._version import __version__

    assert i2i.__version__ == __version__
    assert 'attr = "i2i._version.__version__"' in (ROOT.parent / "pyproject.toml").read_text()
