"""The classes of failure the command-line fuzz (tests/test_cli_fuzz.py) found, each on several members:
one line naming the file or option, the right exit code, nothing written."""
import json

import numpy as np

from i2i.cli.eval import main as eval_main
from i2i.cli.export import main as export_main
from i2i.cli.make_haze import main as make_haze_main
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.cli.download import main as download_main
from i2i.data.io import write_image
from reliability_helpers import tiny_config


def one_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _images(*folders):
    for folder in folders:
        write_image(folder / "a.png", np.zeros((8, 8, 3), np.uint8))


def test_files_read_as_text_that_are_not_text_are_one_line(tmp_path, capsys):
    """A palette, a config or an earlier haze.csv that holds binary bytes: one line naming the file."""
    _images(tmp_path / "pred", tmp_path / "target")
    binary = tmp_path / "pic.png"
    write_image(binary, np.zeros((4, 4, 3), np.uint8))
    assert eval_main(["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--metrics", "psnr",
                      "--palette", str(binary)]) == 1
    assert one_line(capsys).startswith(f"error: {binary}:1: expected 'index R G B', got '")
    assert train_main(["--config", str(binary)]) == 2
    assert one_line(capsys) == f"error: {binary}: not a text file (not UTF-8); give a YAML config"
    out = tmp_path / "haze"
    out.mkdir()
    (out / "haze.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert make_haze_main(["--input", str(tmp_path / "pred"), "--output", str(out)]) == 1
    assert one_line(capsys).startswith(f"error: {out / 'haze.csv'}: not a parameter table of i2i-make-haze (")
    assert sorted(p.name for p in out.iterdir()) == ["haze.csv"]  # refused before anything is written
    assert (out / "haze.csv").read_bytes() == b"\x89PNG\r\n\x1a\n\xff\xfe"


def test_an_earlier_haze_table_is_merged(tmp_path, capsys):
    _images(tmp_path / "in")
    out = tmp_path / "out"
    assert make_haze_main(["--input", str(tmp_path / "in"), "--output", str(out), "--per-image", "1"]) == 0
    assert make_haze_main(["--input", str(tmp_path / "in"), "--output", str(out), "--per-image", "2"]) == 0
    rows = (out / "haze.csv").read_text().splitlines()
    assert rows[0] == "hazy,clear,beta,airlight,depth" and [r.split(",")[0] for r in rows[1:]] == ["hazy/a_1.png", "hazy/a_2.png"]


def test_download_arguments_and_file_system_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("I2I_DATASETS_URL", "http://127.0.0.1:9")
    for url in ("not a url", "http://[::1"):  # no scheme; an IPv6 host cut short
        assert download_main(["facades", "--root", str(tmp_path / "d"), "--base-url", url]) == 2
        assert "not a URL i2i can download from" in one_line(capsys)
    assert not (tmp_path / "d").exists()  # refused before anything is made
    (tmp_path / "file").write_text("x")
    assert download_main(["facades", "--root", str(tmp_path / "file")]) == 2
    assert one_line(capsys) == f"error: --root {tmp_path / 'file'}: is a file, not a folder"
    assert download_main(["facades", "--root", str(tmp_path / "file" / "sub")]) == 2
    assert "lies under" in one_line(capsys)
    assert download_main(["facades", "--root", str(tmp_path / "d")]) == 1  # nothing listens on port 9
    assert one_line(capsys).startswith("error: download failed: http://127.0.0.1:9/pix2pix/datasets/facades.tar.gz")


def test_sizes_beyond_the_pixel_limit_are_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    """--resize of i2i-translate and data.load_size / crop_size of a run: N x N within the pixel limit."""
    _images(tmp_path / "imgs")
    out = tmp_path / "out"
    assert translate_main(["--checkpoint", str(tmp_path / "ckpt.pt"), "--input", str(tmp_path / "imgs"),
                           "--output", str(out), "--resize", str(2**31)]) == 2
    assert one_line(capsys) == (f"error: --resize {2**31}: {2**31} x {2**31} pixels is more than the pixel limit "
                                "(67108864; --max-pixels or $I2I_MAX_PIXELS)")
    assert translate_main(["--method", "dcp", "--input", str(tmp_path / "imgs"), "--output", str(out),
                           "--resize", "40", "--max-pixels", "1599"]) == 2
    assert "--resize 40: 40 x 40 pixels is more than the pixel limit (1599;" in one_line(capsys)
    assert not out.exists()
    assert translate_main(["--method", "dcp", "--input", str(tmp_path / "imgs"), "--output", str(out),
                           "--resize", "40", "--max-pixels", "1600"]) == 0
    capsys.readouterr()
    runs = tmp_path / "runs"
    cfg = str(tiny_config(tmp_path))  # 36 px loads, 32 px crops
    for sets, key, size in ((["data.load_size=100000", "data.crop_size=64"], "load_size", 100000),
                            (["data.preprocess=crop", "data.crop_size=9000"], "crop_size", 9000)):
        assert train_main(["--config", cfg, "--set", *sets]) == 2
        assert one_line(capsys) == (f"error: data.{key}: {size} x {size} pixels is more than the pixel limit "
                                    "(67108864; data.max_pixels or $I2I_MAX_PIXELS)")
    monkeypatch.setenv("I2I_MAX_PIXELS", "1000")
    assert train_main(["--config", cfg]) == 2
    assert "error: data.load_size: 36 x 36 pixels is more than the pixel limit (1000;" in one_line(capsys)
    assert not runs.exists()  # no run folder left behind


def test_eval_json_where_its_html_page_writes_is_refused(tmp_path, capsys):
    _images(tmp_path / "pred", tmp_path / "target")
    page = tmp_path / "page"
    base = ["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--metrics", "psnr",
            "--html", str(page)]
    for json_path in (page / "index.html", page / "img" / "r.json", page / "results.json", page):
        assert eval_main([*base, "--json", str(json_path)]) == 2
        assert one_line(capsys) == (f"error: --json {json_path}: lies inside the --html folder {page}, where the page "
                                    "is written; give a path outside it")
    assert not page.exists()
    assert eval_main([*base, "--json", str(tmp_path / "results.json")]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["psnr"] == "inf"
    assert (page / "index.html").is_file()


def test_an_onnx_export_is_the_binary_format_whatever_its_file_name(tmp_path, capsys):
    """onnx would choose a text format by the name's extension (.json, .txt), which onnxruntime cannot read."""
    import onnx

    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "train.max_steps=1"]) == 0
    for name in ("model.json", "model.txt"):
        out = tmp_path / name
        assert export_main(["--checkpoint", str(tmp_path / "runs" / "tiny"), "--format", "onnx",
                            "--output", str(out)]) == 0
        assert len(onnx.load(str(out), format="protobuf").graph.node) > 0
