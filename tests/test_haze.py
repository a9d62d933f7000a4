"""Haze synthesis: the scattering model against hand-computed pixels, and the i2i-make-haze CLI."""
import csv
import math
import re

import numpy as np
import pytest

from i2i.cli.make_haze import main
from i2i.config import DataConfig
from i2i.data import build_dataset
from i2i.data.haze import add_haze, gradient_depth, hazy_uint8, normalize_depth, transmission
from i2i.data.io import read_image, write_image


# --------------------------------------------------------------------------- physics
def test_full_transmission_returns_the_clear_image():
    clear = np.random.default_rng(0).random((4, 5, 3))
    assert np.array_equal(add_haze(clear, np.ones((4, 5)), 0.8), clear)
    assert np.array_equal(transmission(np.full((4, 5), 3.0), 0.0), np.ones((4, 5)))
    assert np.allclose(add_haze(clear, transmission(np.zeros((4, 5)), 1.7), 0.8), clear)


def test_known_beta_depth_and_airlight_give_the_expected_pixel():
    # J = 0.2, d = 0.5, beta = 1.2, A = 0.9: t = exp(-0.6) = 0.548812, I = 0.2 t + 0.9 (1 - t) = 0.515832
    t = transmission(np.array([[0.5]]), 1.2)
    assert t[0, 0] == pytest.approx(0.548812, abs=1e-6)
    hazy = add_haze(np.full((1, 1, 3), 0.2), t, 0.9)
    assert hazy.shape == (1, 1, 3)
    assert np.allclose(hazy, 0.515832, atol=1e-6)
    # zero transmission leaves only the airlight, per channel when A is a colour
    assert np.allclose(add_haze(np.full((1, 1, 3), 0.2), np.zeros((1, 1)), [0.7, 0.8, 0.9]), [[[0.7, 0.8, 0.9]]])


def test_uint8_haze_rounds_the_model():
    clear = np.full((2, 3, 3), 51, np.uint8)  # J = 0.2
    depth = np.full((2, 3), 7.0)  # normalized to 1 -> t = exp(-beta)
    expected = round((0.2 * math.exp(-1.0) + 0.8 * (1 - math.exp(-1.0))) * 255)
    assert np.all(hazy_uint8(clear, depth, 1.0, 0.8) == expected)
    with pytest.raises(ValueError, match="depth map is 2x2, image is 2x3"):
        hazy_uint8(clear, np.ones((2, 2)), 1.0, 0.8)


def test_fallback_depth_is_a_vertical_ramp_far_at_the_top():
    d = gradient_depth(5, 3)
    assert d.shape == (5, 3)
    assert np.allclose(d[:, 0], [1.0, 0.825, 0.65, 0.475, 0.3]) and np.all(d == d[:, :1])
    hazy = hazy_uint8(np.zeros((5, 3, 3), np.uint8), None, 1.0, 1.0)  # black scene: I = 1 - t
    assert np.all(np.diff(hazy[:, 0, 0].astype(int)) < 0)  # denser towards the top
    assert hazy[0, 0, 0] == round((1 - math.exp(-1.0)) * 255)


def test_depth_normalization():
    assert np.allclose(normalize_depth(np.array([[2.0, 4.0], [-1.0, 0.0]])), [[0.5, 1.0], [0.0, 0.0]])
    assert np.array_equal(normalize_depth(np.zeros((2, 2))), np.zeros((2, 2)))


# --------------------------------------------------------------------------- CLI
def _clear_dir(root, names=("a", "b"), size=(8, 6)):
    for i, name in enumerate(names):
        write_image(root / f"{name}.png", np.full((*size, 3), 40 + 60 * i, np.uint8))
    return root


def _params(out):
    with open(out / "haze.csv", newline="") as f:
        return {r["hazy"]: r for r in csv.DictReader(f)}


def test_cli_writes_a_reside_style_paired_set(tmp_path, capsys):
    src, out = _clear_dir(tmp_path / "clear_in"), tmp_path / "out"
    depth = tmp_path / "depth"
    depth.mkdir()
    np.save(depth / "a.npy", np.full((8, 6), 5.0))
    write_image(depth / "b.png", np.full((8, 6), 200, np.uint8))
    assert main(["--input", str(src), "--output", str(out), "--depth", str(depth), "--per-image", "3",
                 "--beta", "0.6", "1.8", "--airlight", "0.7", "1.0", "--seed", "4"]) == 0
    assert sorted(p.name for p in (out / "clear").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in (out / "hazy").iterdir()) == [f"{n}_{k}.png" for n in "ab" for k in (1, 2, 3)]
    assert np.array_equal(read_image(out / "clear" / "b.png"), read_image(src / "b.png"))
    params = _params(out)
    assert len(params) == 6 and params["hazy/a_2.png"]["clear"] == "clear/a.png"
    for rel, row in params.items():
        beta, a = float(row["beta"]), float(row["airlight"])
        assert 0.6 <= beta <= 1.8 and 0.7 <= a <= 1.0
        j = 40 / 255 if "/a_" in rel else 100 / 255  # constant depth: d = 1 everywhere after normalization
        expected = round((j * math.exp(-beta) + a * (1 - math.exp(-beta))) * 255)
        assert np.all(read_image(out / rel) == expected)
    assert len({r["beta"] for r in params.values()}) == 6  # independent draws
    # the output reads back as a paired dataset with the RESIDE rule
    ds = build_dataset(DataConfig(kind="paired", root=str(out), ab_dirs=["hazy", "clear"], pair_regex=r"^(.*)_\d+$",
                                  preprocess="none", num_workers=0))
    assert len(ds) == 6
    assert "wrote 8 file(s)" in capsys.readouterr().err


def test_cli_is_seeded_keeps_existing_files_and_overwrites_on_request(tmp_path, capsys):
    src = _clear_dir(tmp_path / "in")
    args = ["--input", str(src), "--per-image", "2", "--seed", "1"]
    main(args + ["--output", str(tmp_path / "o1")])
    main(args + ["--output", str(tmp_path / "o2")])
    assert _params(tmp_path / "o1") == _params(tmp_path / "o2")
    hazy = tmp_path / "o1" / "hazy" / "a_1.png"
    before = read_image(hazy)
    # no depth maps: the vertical ramp makes the top row hazier than the bottom row
    assert before[0, 0, 0] > before[-1, 0, 0]
    write_image(hazy, np.zeros((8, 6, 3), np.uint8))
    capsys.readouterr()
    assert main(args + ["--output", str(tmp_path / "o1"), "--seed", "9"]) == 0
    assert "kept 6 existing (use --overwrite)" in capsys.readouterr().err
    assert read_image(hazy).max() == 0 and _params(tmp_path / "o1") == _params(tmp_path / "o2")
    assert main(args + ["--output", str(tmp_path / "o1"), "--overwrite"]) == 0
    assert np.array_equal(read_image(hazy), before)
    assert not list((tmp_path / "o1").rglob(".*tmp*"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("extra, message", [
    (["--beta", "1.8", "0.6"], "--beta 1.8 0.6: expected LOW <= HIGH"),
    (["--beta", "-1"], "--beta -1 -1: values must be >= 0"),
    (["--airlight", "0.5", "1.2"], r"--airlight 0.5 1.2: values must be \[0, 1\]"),
    (["--airlight", "0.1", "0.2", "0.3"], "one value or a range"),
    (["--per-image", "0"], "--per-image must be 1 to 1000, got 0"),
    (["--per-image", "100000000"], "--per-image must be 1 to 1000, got 100000000"),  # memory holds its paths
])
def test_cli_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    src = _clear_dir(tmp_path / "in")
    assert main(["--input", str(src), "--output", str(tmp_path / "out")] + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err)
    assert not (tmp_path / "out").exists()


def test_cli_bad_folders(tmp_path, capsys):
    src = _clear_dir(tmp_path / "in")
    assert main(["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out")]) == 2
    assert "--input not found" in capsys.readouterr().err
    assert main(["--input", str(src), "--output", str(src / "sub")]) == 2
    assert "lies inside the input folder --input" in capsys.readouterr().err
    assert main(["--input", str(src), "--output", str(src)]) == 2
    assert "is the input --input" in capsys.readouterr().err
    assert main(["--input", str(src), "--output", str(tmp_path)]) == 2
    assert f"the input --input {src} lies inside {tmp_path}, where i2i writes" in capsys.readouterr().err
    depth = tmp_path / "depth"
    depth.mkdir()
    np.save(depth / "a.npy", np.ones((8, 6)))
    assert main(["--input", str(src), "--output", str(tmp_path / "out"), "--depth", str(depth)]) == 1
    assert "1 image(s) have no depth map in" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_unreadable_inputs_are_listed_and_exit_1(tmp_path, capsys):
    src = _clear_dir(tmp_path / "in")
    (src / "broken.png").write_bytes(b"not an image")
    depth = tmp_path / "depth"
    depth.mkdir()
    for name in ("a", "broken"):
        np.save(depth / f"{name}.npy", np.ones((8, 6)))
    np.save(depth / "b.npy", np.ones((4, 4)))
    assert main(["--input", str(src), "--output", str(tmp_path / "out"), "--depth", str(depth),
                 "--per-image", "1"]) == 1
    err = capsys.readouterr().err
    assert "skipped 2 unreadable input(s)" in err and "broken.png" in err and "is 4x4, image" in err
    assert sorted(p.name for p in (tmp_path / "out" / "hazy").iterdir()) == ["a_1.png"]


def test_cli_interrupted_records_the_parameters_of_the_files_it_wrote(tmp_path, monkeypatch, capsys):
    import i2i.data.io

    src, out = _clear_dir(tmp_path / "in"), tmp_path / "out"
    calls, write = [], i2i.data.io.write_image

    def write_then_stop(path, arr):
        if len(calls) == 4:  # clear/a, hazy/a_1, hazy/a_2, clear/b written; Ctrl-C before hazy/b_1
            raise KeyboardInterrupt
        calls.append(path)
        write(path, arr)

    monkeypatch.setattr(i2i.data.io, "write_image", write_then_stop)
    args = ["--input", str(src), "--output", str(out), "--per-image", "2"]
    assert main(args) == 130
    assert sorted(_params(out)) == ["hazy/a_1.png", "hazy/a_2.png"]
    monkeypatch.setattr(i2i.data.io, "write_image", write)
    assert main(args) == 0  # the rerun keeps the files written and records only the new ones
    assert sorted(_params(out)) == ["hazy/a_1.png", "hazy/a_2.png", "hazy/b_1.png", "hazy/b_2.png"]
    assert main(args[:2] + ["--output", str(tmp_path / "whole"), "--per-image", "2"]) == 0
    assert _params(out) == _params(tmp_path / "whole")  # as if never interrupted
