"""The small scripts in tools/."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from i2i.data.io import read_image, write_image

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def run(script, *args):
    return subprocess.run([sys.executable, str(TOOLS / script), *map(str, args)], capture_output=True, text=True)


def test_export_builtin_writes_pairs(tmp_path):
    proc = run("export_builtin.py", tmp_path / "demo", "--phase", "test", "--size", 32)
    assert proc.returncode == 0, proc.stderr
    a = sorted((tmp_path / "demo" / "A").iterdir())
    b = sorted((tmp_path / "demo" / "B").iterdir())
    assert len(a) == len(b) == 16 and [p.name for p in a] == [p.name for p in b]
    assert read_image(a[0]).shape == (32, 32, 3)
    assert not np.array_equal(read_image(a[0]), read_image(b[0]))


def test_split_aligned_halves_pairs(tmp_path):
    pair = np.concatenate([np.zeros((8, 6, 3), np.uint8), np.full((8, 6, 3), 200, np.uint8)], 1)
    write_image(tmp_path / "src" / "train" / "x.jpg", pair)
    proc = run("split_aligned.py", tmp_path / "src", tmp_path / "dst")
    assert proc.returncode == 0, proc.stderr
    assert (read_image(tmp_path / "dst" / "trainA" / "x.png") < 10).all()
    assert (read_image(tmp_path / "dst" / "trainB" / "x.png") > 190).all()
