"""i2i-translate never writes over its inputs and never writes two inputs into one file."""
import os

import numpy as np
import pytest

from i2i.cli.translate import main as translate_main
from i2i.data.io import write_image


def make_inputs(root, names, size=16):
    rng = np.random.default_rng(0)
    for name in names:
        write_image(root / name, rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def dcp(src, dst, *extra):
    return translate_main(["--method", "dcp", "--input", str(src), "--output", str(dst), *extra])


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_output_equal_to_input_is_refused(tmp_path, capsys, overwrite):
    src = tmp_path / "photos"
    make_inputs(src, ["a.png", "sub/b.jpg"])
    before = snapshot(src)
    assert dcp(src, src, *overwrite) == 2
    assert "is the --input folder" in one_error_line(capsys)
    os.symlink(src, tmp_path / "link")  # the same folder under another name
    assert dcp(src, tmp_path / "link", *overwrite) == 2
    assert dcp(tmp_path / "link", tmp_path / "photos" / "." , *overwrite) == 2
    assert snapshot(src) == before


def test_output_inside_input_is_left_out_of_the_inputs(tmp_path, capsys):
    src = tmp_path / "photos"
    make_inputs(src, ["a.png", "sub/b.jpg"])
    before = snapshot(src)
    assert dcp(src, src / "out", "--overwrite") == 0
    assert dcp(src, src / "out", "--overwrite") == 0  # a second run does not read the first run's outputs
    assert "its 2 image(s) are not read as inputs" in capsys.readouterr().err
    after = snapshot(src)
    assert {k: v for k, v in after.items() if not k.startswith("out/")} == before
    assert sorted(k for k in after if k.startswith("out/")) == ["out/.i2i-translations", "out/a.png", "out/sub/b.jpg"]


def test_an_output_file_that_is_an_input_file_is_refused(tmp_path, capsys):
    # one input file, translated into its own folder
    make_inputs(tmp_path, ["a.png"])
    before = snapshot(tmp_path)
    assert dcp(tmp_path / "a.png", tmp_path, "--overwrite") == 2
    assert "would replace input files" in one_error_line(capsys)
    # the input folder inside the output folder, mirrored onto itself
    src = tmp_path / "out" / "photos"
    make_inputs(src, ["x.png", "photos/x.png"])
    before = snapshot(tmp_path)
    assert dcp(src, tmp_path / "out", "--overwrite") == 2
    line = one_error_line(capsys)
    assert "would replace input files" in line and str(src / "x.png") in line
    # an output folder that is a link into the inputs
    os.symlink(src / "photos", tmp_path / "elsewhere")
    assert dcp(src / "photos", tmp_path / "elsewhere", "--overwrite", "--ext", "png") == 2
    assert snapshot(tmp_path) == before


def test_two_inputs_never_map_to_one_output(tmp_path, capsys):
    src = tmp_path / "in"
    make_inputs(src, ["a.jpg", "a.png", "sub/c.webp", "sub/c.bmp", "d.png"])
    assert dcp(src, tmp_path / "out", "--ext", "png") == 2
    line = one_error_line(capsys)
    assert "2 output file(s) would be written from several inputs" in line
    assert "a.jpg" in line and "a.png" in line and "c.webp" in line and "c.bmp" in line
    assert not (tmp_path / "out").exists()  # nothing written
    # names that differ only in case are one file on some file systems
    make_inputs(tmp_path / "cased", ["x.PNG", "x.png"])
    assert dcp(tmp_path / "cased", tmp_path / "out") == 2
    assert "x.PNG" in one_error_line(capsys) and not (tmp_path / "out").exists()
    # without --ext the same inputs are fine
    assert dcp(src, tmp_path / "out") == 0
    assert len(list((tmp_path / "out").rglob("*.*"))) == 5 + 1  # and the output folder's marker


def test_output_that_is_a_file_is_one_line(tmp_path, capsys):
    make_inputs(tmp_path / "in", ["a.png"])
    (tmp_path / "file").write_text("x")
    assert dcp(tmp_path / "in", tmp_path / "file") == 2
    assert "is a file, not a folder" in one_error_line(capsys)
    assert dcp(tmp_path / "in", tmp_path / "file" / "sub") == 2
    assert "which is a file" in one_error_line(capsys)
    assert (tmp_path / "file").read_text() == "x"


def test_a_folder_without_images_is_one_line_exit_1(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not an image")
    for folder in ("empty", "notes"):
        assert dcp(tmp_path / folder, tmp_path / "out") == 1
        assert one_error_line(capsys) == (f"error: --input {tmp_path / folder}: no images in this folder "
                                          "(looked for .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)")
    assert not (tmp_path / "out").exists()


def test_an_unreadable_file_whose_name_holds_a_newline_is_listed_on_one_line(tmp_path, capsys):
    make_inputs(tmp_path / "in", ["good.png"])
    (tmp_path / "in" / "bad\nname.png").write_bytes(b"not an image")
    assert dcp(tmp_path / "in", tmp_path / "out") == 1
    err = capsys.readouterr().err.splitlines()
    listed = err[err.index("skipped 1 unreadable file(s):") + 1:]
    bad = f"{tmp_path / 'in' / 'bad'}\nname.png"
    assert listed == ["  " + repr(f"cannot read image {bad}: not a valid or supported image file")]
