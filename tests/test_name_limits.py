"""Names at the file system's limit: temporary files beside an output fit within it, and an output that cannot be
written is listed without stopping the run (the other outputs and the --html page are written)."""
import os

import numpy as np
import pytest

from i2i.cli.translate import main as translate_main
from i2i.data.io import read_image, write_image
from i2i.utils import atomic_write_text, temp_affixes

LIMIT = 255  # NAME_MAX of the usual Linux file systems (tmp_path's is checked below)


@pytest.mark.parametrize("name", ["a" * 250 + ".png", "é" * 125 + ".txt", "b" * 255, "c." + "d" * 253,
                                  "x.png", ".hidden"])
def test_a_temporary_name_stays_within_the_limit_for_any_valid_name(tmp_path, name):
    assert os.pathconf(tmp_path, "PC_NAME_MAX") == LIMIT
    assert len(os.fsencode(name)) <= LIMIT
    prefix, suffix = temp_affixes(tmp_path / name)
    assert len(os.fsencode(prefix + "r" * 8 + suffix)) <= LIMIT
    assert prefix.startswith(".") and suffix.startswith(".tmp")
    if len(os.fsencode(name)) < 200:  # short names are kept whole, the suffix last (OpenCV picks formats by it)
        stem, dot, ext = name.rpartition(".") if name.rpartition(".")[0] else (name, "", "")
        assert prefix == f".{stem}." and suffix == f".tmp{dot}{ext}"
    atomic_write_text(tmp_path / name, "text")
    assert (tmp_path / name).read_text() == "text"
    assert os.listdir(tmp_path) == [name]  # no temporary file left


def test_an_image_with_a_254_byte_name_is_written(tmp_path):
    name = "a" * 250 + ".png"
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    write_image(tmp_path / name, image)
    np.testing.assert_array_equal(read_image(tmp_path / name), image)
    assert os.listdir(tmp_path) == [name]


def test_an_output_that_cannot_be_written_is_listed_and_the_run_goes_on(tmp_path, capsys):
    src, out, html = tmp_path / "in", tmp_path / "out", tmp_path / "page"
    long_name, blocked = "a" * 250 + ".png", "b.png"
    rng = np.random.default_rng(0)
    for name in (long_name, blocked, "c.png"):
        write_image(src / name, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    (out / blocked).mkdir(parents=True)  # a folder where the output file would go: it cannot be replaced
    code = translate_main(["--method", "dcp", "--input", str(src), "--output", str(out), "--overwrite",
                           "--html", str(html), "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "translated 2 image(s)" in err
    assert "skipped 1 file(s) whose output could not be written:" in err and f"{out / blocked}: cannot write" in err
    assert "Traceback" not in err
    assert read_image(out / long_name).shape == (16, 16, 3) and read_image(out / "c.png").shape == (16, 16, 3)
    assert (html / "index.html").is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and "tmp" in p.name) == []
