"""The declared dependency floors and the file of minimum versions that the second stage of .ci/run installs.

``.ci/minimum-versions.txt`` pins each runtime dependency at its floor in ``pyproject.toml``; .ci/run installs
i2i with it as constraints into a virtual environment of its own and runs the tests marked ``smoke`` there,
with ``I2I_MINIMUM_VERSIONS`` naming the file, so that the last test below checks what was installed.
"""
import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MINIMUM = REPO / ".ci" / "minimum-versions.txt"


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _release(text: str) -> tuple[int, ...]:
    """``"2.0"``, ``"2.0.0"`` and ``"2.0.0+cu128"`` -> ``(2,)``: the release numbers, trailing zeros aside."""
    numbers = [int(part) for part in text.split("+")[0].split(".")]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def floors() -> dict[str, tuple[int, ...]]:
    """``name -> version`` of pyproject's runtime dependencies, each of which must be ``name>=version``."""
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9]+(?:\.[0-9]+)*)\s*", dep)
        assert match, f"pyproject.toml: dependency {dep!r} is not of the form name>=version"
        out[_name(match[1])] = _release(match[2])
    return out


def pins(path: Path = MINIMUM) -> dict[str, tuple[int, ...]]:
    """``name -> version`` of the ``name==version`` lines of ``path`` (comments and blank lines aside)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9]+(?:\.[0-9]+)*)", line)
            assert match, f"{path.name}: {line!r} is not of the form name==version"
            out[_name(match[1])] = _release(match[2])
    return out


def test_the_minimum_versions_are_the_floors_of_pyproject():
    assert pins() == floors()


def test_the_parsers_read_names_and_versions_as_pip_does(tmp_path):
    path = tmp_path / "pins.txt"
    path.write_text("# comment\n\nOpenCV_Python.Headless==4.9.0.80  # why\ntorch==2.9.0\n")
    assert pins(path) == {"opencv-python-headless": (4, 9, 0, 80), "torch": (2, 9)}
    path.write_text("torch>=2.9.1\n")
    with pytest.raises(AssertionError, match="name==version"):
        pins(path)


@pytest.mark.smoke
@pytest.mark.skipif(not os.environ.get("I2I_MINIMUM_VERSIONS"), reason="runs where .ci/run installed the minimums")
def test_the_environment_holds_the_minimum_versions():
    wanted = pins(REPO / os.environ["I2I_MINIMUM_VERSIONS"])
    installed = {name: _release(version(name)) for name in wanted}
    assert installed == wanted
