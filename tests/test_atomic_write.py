"""Files written through the atomic-write helper get the mode a plain open() gives them."""
import os
import stat

import numpy as np
import pytest

from i2i.checkpoint import save_checkpoint
from i2i.data.io import write_image
from i2i.utils import atomic_path, atomic_write_text, current_umask


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_is_read_without_change(umask):
    umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o000])
def test_new_files_get_the_mode_of_a_plain_open(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    writers = {
        "text.txt": lambda p: atomic_write_text(p, "x"),
        "image.png": lambda p: write_image(p, np.zeros((4, 4, 3), np.uint8)),
        "ckpt.pt": lambda p: save_checkpoint({"model": {}, "config": {}}, p),
    }
    for name, write in writers.items():
        write(tmp_path / name)
        assert mode(tmp_path / name) == mode(tmp_path / "plain.txt") == 0o666 & ~mask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["plain.txt", *writers])  # no temporary left


def test_rewriting_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "kept.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path, sync=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
