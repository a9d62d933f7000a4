"""Bad checkpoints, paths and environments give one line and an exit code, never a traceback."""
import torch

from i2i import __version__
from i2i.cli.eval import main as eval_main
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.data.io import write_image
from reliability_helpers import tiny_config

import numpy as np
import pytest


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def ckpt(tmp_path):
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "train.max_steps=3"]) == 0
    return tmp_path / "runs" / "tiny" / "checkpoints" / "step_0000003.pt"


def edit(path, fn):
    state = torch.load(path, weights_only=True)
    fn(state)
    torch.save(state, path)


def translate(tmp_path, ckpt):
    src = tmp_path / "in"
    write_image(src / "a.png", np.zeros((32, 32, 3), np.uint8))
    return translate_main(["--checkpoint", str(ckpt), "--input", str(src), "--output", str(tmp_path / "out")])


def test_a_checkpoint_whose_config_does_not_fit_its_weights(tmp_path, ckpt, capsys):
    edit(ckpt, lambda s: s["config"]["nets"]["G"].update(ngf=16))
    capsys.readouterr()
    assert translate(tmp_path, ckpt) == 1
    line = one_error_line(capsys)
    assert line.startswith(f"error: {ckpt}: its weights do not fit the pix2pix model its config builds: ")
    assert "of another shape (G." in line and "8x3x4x4 in the file, 16x3x4x4 in the model" in line
    assert train_main(["--resume", str(ckpt)]) == 1
    assert "its weights do not fit the pix2pix model of the config" in one_error_line(capsys)
    # a --set that changes the networks on resume: the same line, and no folder left behind
    edit(ckpt, lambda s: s["config"]["nets"]["G"].update(ngf=8))
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert train_main(["--resume", str(ckpt), "--set", "nets.G.num_downs=6", "data.load_size=64", "data.crop_size=64"]) == 1
    assert "unexpected (G." in one_error_line(capsys)
    # a value the network builder refuses is a config error
    assert train_main(["--resume", str(ckpt), "--set", "nets.G.num_downs=4"]) == 2
    assert "network 'unet' (ngf=8, num_downs=4): num_downs must be >= 5" in one_error_line(capsys)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before


def test_missing_weights_and_another_model(tmp_path, ckpt, capsys):
    def drop(state):
        del state["model"][next(k for k in state["model"] if k.startswith("G."))]

    edit(ckpt, drop)
    capsys.readouterr()
    assert translate(tmp_path, ckpt) == 1
    assert "1 missing (G." in one_error_line(capsys)
    edit(ckpt, lambda s: s["config"].update(model={"name": "cyclegan"}))
    assert translate(tmp_path, ckpt) in (1, 2)
    one_error_line(capsys)


def test_checkpoints_carry_the_i2i_version_and_another_one_is_said(tmp_path, ckpt, capsys):
    from i2i.checkpoint import load_checkpoint

    state = torch.load(ckpt, weights_only=True)
    assert state["i2i_version"] == __version__ and state["format"] == 2
    capsys.readouterr()
    load_checkpoint(ckpt)
    assert capsys.readouterr().err == ""
    edit(ckpt, lambda s: s.update(i2i_version="0.0.7"))
    load_checkpoint(ckpt)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"note: {ckpt} was written by i2i 0.0.7 (format 2); this is i2i {__version__}"
    edit(ckpt, lambda s: s.update(format=3, i2i_version="9.0"))
    assert translate(tmp_path, ckpt) == 1
    line = one_error_line(capsys)
    assert "checkpoint format 3 (written by i2i 9.0) is newer than this i2i" in line


def test_a_train_out_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "runs").write_text("not a folder")
    assert train_main(["--config", str(tiny_config(tmp_path))]) == 2
    assert one_error_line(capsys) == f"error: train.out_dir {tmp_path / 'runs'}: is a file, not a folder"
    assert (tmp_path / "runs").read_text() == "not a folder"


def test_eval_json_pointing_at_a_folder_is_refused_before_scoring(tmp_path, capsys):
    for side in ("pred", "target"):
        write_image(tmp_path / side / "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "out.json").mkdir()
    code = eval_main(["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--metrics", "psnr",
                      "--json", str(tmp_path / "out.json")])
    assert code == 2 and one_error_line(capsys) == f"error: --json {tmp_path / 'out.json'}: is a folder; give a file name"


def test_file_system_errors_are_one_line(tmp_path, capsys):
    src = tmp_path / "in"
    write_image(src / "a.png", np.zeros((8, 8, 3), np.uint8))
    too_long = tmp_path / ("x" * 300)
    assert translate_main(["--method", "dcp", "--input", str(src), "--output", str(too_long)]) == 1
    assert one_error_line(capsys).startswith("error: File name too long")


def test_export_never_writes_over_the_checkpoint_it_reads(tmp_path, ckpt, capsys):
    from i2i.cli.export import main as export_main

    before = ckpt.read_bytes()
    capsys.readouterr()
    assert export_main(["--checkpoint", str(ckpt), "--format", "torchscript", "--output", str(ckpt), "--overwrite"]) == 2
    assert one_error_line(capsys) == f"error: --output {ckpt}: is the input --checkpoint {ckpt}; give another path"
    run = ckpt.parent.parent
    assert export_main(["--checkpoint", str(run), "--format", "torchscript", "--output", str(ckpt), "--overwrite"]) == 2  # its newest
    assert one_error_line(capsys) == f"error: --output {ckpt}: lies inside the input folder --checkpoint {run}; give a path outside it"
    link = tmp_path / "hard.pt"
    link.hardlink_to(ckpt)  # another name of the checkpoint file
    assert export_main(["--checkpoint", str(ckpt), "--format", "torchscript", "--output", str(link), "--overwrite"]) == 2
    assert one_error_line(capsys) == f"error: --output {link}: is the input --checkpoint {ckpt}; give another path"
    assert ckpt.read_bytes() == before


def test_make_haze_output_that_is_a_file(tmp_path, capsys):
    from i2i.cli.make_haze import main as haze_main

    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "out").write_text("x")
    assert haze_main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys) == f"error: --output {tmp_path / 'out'}: is a file, not a folder"


def test_a_checkpoint_without_its_training_state(tmp_path, ckpt, capsys):
    edit(ckpt, lambda s: s.pop("rng"))
    capsys.readouterr()
    assert train_main(["--resume", str(ckpt)]) == 1
    assert "its training state does not fit the pix2pix model of the config: KeyError 'rng'" in one_error_line(capsys)


@pytest.mark.parametrize("name", ["..", "../elsewhere", "/abs/run", "."])
def test_a_run_name_that_leaves_the_out_dir(tmp_path, capsys, name):
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", f"train.name={name}"]) == 2
    assert "must name a folder inside train.out_dir" in one_error_line(capsys)


@pytest.mark.parametrize("field, value, what", [("ema", 5, "ema is int, expected dict"),
                                                ("step", "abc", "step is str, expected int"),
                                                ("rng", [1], "rng is list, expected dict")])
def test_a_checkpoint_with_a_field_of_another_type(tmp_path, ckpt, capsys, field, value, what):
    edit(ckpt, lambda s: s.update({field: value}))
    capsys.readouterr()
    assert translate(tmp_path, ckpt) == 1
    assert one_error_line(capsys) == f"error: {ckpt}: not an i2i checkpoint ({what})"
    assert train_main(["--resume", str(ckpt)]) == 1
    assert one_error_line(capsys) == f"error: {ckpt}: not an i2i checkpoint ({what})"


@pytest.mark.parametrize("base, shown", [("123", "123"), ("[x.yaml]", "['x.yaml']"), ("{a: 1}", "{'a': 1}")])
def test_a_base_that_is_not_a_file_name(tmp_path, capsys, base, shown):
    cfg = tiny_config(tmp_path)
    cfg.write_text(f"base: {base}\n" + cfg.read_text())
    assert train_main(["--config", str(cfg)]) == 2
    assert one_error_line(capsys) == f"error: {cfg}: base: expected a file or shipped config name, got {shown}"


def test_seeds_beyond_32_bits(tmp_path, ckpt, capsys):
    from i2i.cli.make_haze import main as haze_main
    from i2i.cli.sample import main as sample_main

    big = str(2 ** 64)
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", f"train.seed={big}"]) == 2
    assert one_error_line(capsys) == f"error: train.seed: must be <= {2 ** 32 - 1}, got {big}"
    assert not (tmp_path / "runs" / "tiny-2").exists()
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    for main, args in ((translate_main, ["--checkpoint", str(ckpt), "--input", str(tmp_path / "in")]),
                       (sample_main, ["--checkpoint", str(ckpt)]), (haze_main, ["--input", str(tmp_path / "in")])):
        for seed in (big, "-1"):
            assert main([*args, "--output", str(tmp_path / "out"), "--seed", seed]) == 2
            assert one_error_line(capsys) == f"error: --seed: must be 0 to {2 ** 32 - 1}, got {seed}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("device, message", [("meta", "holds no data"), ("xpu:3", "is not available here")])
def test_a_device_that_cannot_train(tmp_path, capsys, device, message):
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", f"train.device={device}"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: train.device: '{device}' ") and message in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("value", ["abc", "1e400", "-5"])
def test_a_bad_pixel_limit_in_the_environment(tmp_path, capsys, monkeypatch, value):
    for d in ("trainA", "trainB"):
        write_image(tmp_path / "data" / d / "a.png", np.zeros((40, 40, 3), np.uint8))
    monkeypatch.setenv("I2I_MAX_PIXELS", value)
    args = ["--config", str(tiny_config(tmp_path)), "--set", f"data.root={tmp_path / 'data'}", "data.kind=unpaired",
            "model=cyclegan", "data.num_workers=1"]
    assert train_main(args) == 2
    assert one_error_line(capsys) == f"error: I2I_MAX_PIXELS: expected a positive number of pixels, got '{value}'"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_non_finite_depth_maps_are_skipped_and_listed(tmp_path, capsys):
    from i2i.cli.make_haze import main as haze_main

    for name in ("a", "b", "c"):
        write_image(tmp_path / "in" / f"{name}.png", np.full((6, 8, 3), 200, np.uint8))
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "a.npy", np.ones((6, 8)))
    np.save(tmp_path / "depth" / "b.npy", np.full((6, 8), np.nan))
    np.save(tmp_path / "depth" / "c.npy", np.where(np.eye(6, 8) > 0, np.inf, 1.0))
    assert haze_main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                      "--depth", str(tmp_path / "depth")]) == 1
    err = capsys.readouterr().err
    assert f"depth map {tmp_path / 'depth' / 'b.npy'}: 48 value(s) are NaN or infinite" in err
    assert f"depth map {tmp_path / 'depth' / 'c.npy'}: 6 value(s) are NaN or infinite" in err
    assert "Traceback" not in err
    assert {p.name.split("_")[0] for p in (tmp_path / "out" / "hazy").iterdir()} == {"a"}  # b and c: no image
