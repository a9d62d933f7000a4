"""i2i as a user installs it: a wheel built from this tree, installed (not editable) into a fresh virtual
environment, its commands run from an empty folder.

The new environment sees the test environment's site-packages through a ``.pth`` line, so that torch and
the other dependencies are not installed again; ``.pth`` files inside a folder added that way are not read,
so the editable install of this tree stays out of it (checked: ``i2i`` is imported from the new environment).
"""
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
QUICK = ["train.max_steps=3", "data.batch_size=2", "log.every=1"]


def _run(cmd, cwd, env, code=0):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of the sources (the build leaves build/ and *.egg-info beside them)."""
    src = tmp / "src"
    shutil.copytree(REPO / "i2i", src / "i2i", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(tmp / "dist"), str(src)], tmp, os.environ)
    (wheel,) = (tmp / "dist").glob("i2i-*.whl")
    return wheel


def _fresh_venv(tmp: Path, env: dict) -> Path:
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    Path(purelib.stdout.strip(), "outer-site-packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


@pytest.mark.install
def test_the_wheel_installs_and_its_commands_run_from_an_empty_folder(tmp_path):
    wheel = _build_wheel(tmp_path)
    shipped = sorted(p.name for p in (REPO / "i2i" / "configs").glob("*.yaml"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert sorted(n.split("/")[-1] for n in names if n.startswith("i2i/configs/")) == shipped
    assert "i2i-download = i2i.cli.download:main" in entry_points  # its main: tests/test_shipped_configs.py

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    venv = _fresh_venv(tmp_path, env)
    python, bin_ = str(venv / "bin" / "python"), venv / "bin"
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)],
         tmp_path, env)
    work = tmp_path / "empty"
    work.mkdir()
    where = _run([python, "-c", "import i2i; print(i2i.__file__)"], work, env).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel's code, not this tree's

    listed = _run([str(bin_ / "i2i-train"), "--list-configs"], work, env).stdout.splitlines()
    assert [line.split()[0] for line in listed] == [name[:-5] for name in shipped]

    _run([str(bin_ / "i2i-train"), "--config", "quickstart.yaml", "--set", *QUICK], work, env)
    run_dir = work / "runs" / "quickstart"
    config = (run_dir / "config.yaml").read_text().splitlines()
    used = Path(config[1].removeprefix("# config: ").split(" with --set ")[0])
    assert used.is_relative_to(venv) and used.name == "quickstart.yaml", config[1]
    assert list((run_dir / "checkpoints").glob("*.pt"))

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(work / "in.png")
    _run([str(bin_ / "i2i-translate"), "--checkpoint", str(run_dir), "--input", "in.png", "--output", "out"],
         work, env)
    (out,) = (p for p in (work / "out").iterdir() if not p.name.startswith("."))  # not the folder's i2i marker
    assert Image.open(out).size == (64, 64)

    missing = _run([str(bin_ / "i2i-train"), "--config", "cyclegan_horse2zebra"], work, env, code=2)
    assert missing.stderr == ("error: data.root: folder not found: datasets/horse2zebra "
                              "(download it with: i2i-download horse2zebra)\n")
    assert sorted(p.name for p in work.iterdir()) == ["in.png", "out", "runs"]
