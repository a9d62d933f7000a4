"""End to end through the command line: train, resume, translate."""
import json

import numpy as np
import pytest
import torch
import yaml

from i2i import load_translator
from i2i.checkpoint import list_checkpoints, load_checkpoint
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.data.io import read_image, write_image

TINY = {
    "pix2pix": {
        "model": "pix2pix",
        "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}},
    },
    "cyclegan": {
        "model": "cyclegan",
        "nets": {"G": {"name": "resnet", "n_blocks": 2, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}},
    },
}


def tiny_config(tmp_path, model="pix2pix", **train):
    cfg = dict(TINY[model])
    cfg["data"] = {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2,
                   "num_workers": 0, "max_items": 8}
    cfg["train"] = {"out_dir": str(tmp_path / "runs"), "epochs": 1, "epochs_decay": 1,
                    "checkpoint_every": 3, "keep_last": 10, **train}
    cfg["log"] = {"every": 1, "sample_every": 2, "progress": False}
    path = tmp_path / f"{model}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.smoke
@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_train_writes_run_folder(tmp_path, model, capsys):
    cfg = tiny_config(tmp_path, model)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=4"]) == 0
    run = tmp_path / "runs" / model
    assert (run / "config.yaml").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["name"] == model
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    assert any((run / "tb").iterdir())
    assert [p.name for p in list_checkpoints(run)] == ["step_0000003.pt", "step_0000004.pt"]
    # a second run with the same name does not overwrite the first
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    assert (tmp_path / "runs" / f"{model}-2" / "checkpoints" / "step_0000001.pt").is_file()


@pytest.mark.smoke
@pytest.mark.parametrize("penalty", ["none", "dragan"])  # dragan: random numbers from the step's generator
def test_resume_matches_an_uninterrupted_run(tmp_path, penalty):
    # 8 items / batch 2 = 4 steps per epoch; 1 epoch + 1 decay epoch = 8 steps
    cfg = tiny_config(tmp_path, "cyclegan")
    pen = [f"losses.penalty.type={penalty}", "losses.penalty.weight=1"]
    assert train_main(["--config", str(cfg), "--set", "train.name=full", *pen]) == 0
    assert train_main(["--config", str(cfg), "--set", "train.name=cut", "train.max_steps=5", *pen]) == 0
    cut = tmp_path / "runs" / "cut"
    assert load_checkpoint(cut)["step"] == 5
    assert train_main(["--resume", str(cut), "--set", "train.max_steps=0"]) == 0
    full = load_checkpoint(tmp_path / "runs" / "full")
    resumed = load_checkpoint(cut)
    assert resumed["step"] == full["step"] == 8 and resumed["epoch"] == full["epoch"] == 2
    # linear decay over 1 + 1 epochs: 2e-4 in epoch 0, 2e-4 * (1 - 1/2) in epoch 1, then 0
    lrs = {r["step"]: r["train/lr_G"] for r in map(json.loads, (cut / "metrics.jsonl").read_text().splitlines())}
    assert [lrs[s] for s in range(1, 9)] == pytest.approx([2e-4] * 4 + [1e-4] * 4)
    assert resumed["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0
    assert len(resumed["model"]["pool_A._extra_state"]["images"]) > 0
    for key, value in full["model"].items():
        if torch.is_tensor(value):
            torch.testing.assert_close(resumed["model"][key], value, msg=key)


def test_checkpoint_loads_with_weights_only(tmp_path):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    path = tmp_path / "runs" / "pix2pix" / "checkpoints" / "step_0000001.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert {"model", "optimizers", "schedulers", "scaler", "rng", "config", "step"} <= set(state)
    translator = load_translator(path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    out = translator(x)
    torch.manual_seed(0)
    with torch.no_grad():  # pix2pix runs its generator as in training (batch statistics, dropout)
        expected = translator.model.G.train()(x)
    torch.testing.assert_close(out, expected)
    assert not translator.model.G.eval()(x).allclose(out)


@pytest.mark.smoke
@pytest.mark.parametrize("model, direction", [("pix2pix", "AtoB"), ("cyclegan", "BtoA")])
def test_translate_folder_of_odd_sized_images(tmp_path, model, direction, capsys):
    cfg = tiny_config(tmp_path, model)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    src, dst = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(0)
    sizes = {"a.png": (37, 53), "sub/b.jpg": (100, 70), "sub/deeper/c.webp": (16, 16), "d.png": (37, 53)}
    for name, (h, w) in sizes.items():
        write_image(src / name, rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (src / "broken.png").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored")
    args = ["--checkpoint", str(tmp_path / "runs" / model), "--input", str(src), "--output", str(dst),
            "--direction", direction, "--batch-size", "2"]
    assert translate_main(args) == 1  # the unreadable file is reported
    err = capsys.readouterr().err
    assert "broken.png" in err and "skipped 1 unreadable" in err
    for name, (h, w) in sizes.items():
        assert read_image(dst / name).shape == (h, w, 3)
    assert not (dst / "broken.png").exists() and not (dst / "notes.txt").exists()
    # existing outputs are kept unless --overwrite
    marker = np.zeros((37, 53, 3), np.uint8)
    write_image(dst / "a.png", marker)
    translate_main(args)
    assert (read_image(dst / "a.png") == 0).all()
    translate_main(args + ["--overwrite"])
    assert not (read_image(dst / "a.png") == 0).all()


def test_translate_errors_are_one_line(tmp_path, capsys):
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert translate_main(["--checkpoint", str(tmp_path / "nope.pt"), "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == f"error: checkpoint not found: {tmp_path / 'nope.pt'}"
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    code = translate_main(["--checkpoint", str(tmp_path / "runs" / "pix2pix"), "--input", str(tmp_path / "missing"),
                           "--output", str(tmp_path / "o")])
    assert code == 1 and "--input not found" in capsys.readouterr().err
    code = translate_main(["--checkpoint", str(tmp_path / "runs" / "pix2pix"), "--input", str(tmp_path),
                           "--output", str(tmp_path / "o"), "--direction", "BtoA"])
    assert code == 1 and "pix2pix translates AtoB only, not BtoA" in capsys.readouterr().err


def test_translate_a_checkpoint_with_a_bad_saved_config_names_the_file(tmp_path, capsys):
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "train.max_steps=1"]) == 0
    ckpt = sorted((tmp_path / "runs" / "pix2pix" / "checkpoints").glob("step_*.pt"))[-1]
    state = torch.load(ckpt, weights_only=True)
    state["config"]["nets"]["G"]["ngf"] = "x"
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    capsys.readouterr()
    code = translate_main(["--checkpoint", str(bad), "--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: {bad}: the config saved in it is not valid: nets.G.ngf: expected int")
    assert not (tmp_path / "o").exists()
    assert train_main(["--resume", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: the config saved in it is not valid: nets.G.ngf")
    assert train_main(["--resume", str(bad), "--set", "nets.G.ngf=y"]) == 1  # a --set that does not mend it
    assert capsys.readouterr().err.startswith(f"error: {bad}: the config saved in it is not valid")


def test_translator_accepts_numpy_pil_and_tensors(tmp_path):
    from PIL import Image

    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    tr = load_translator(tmp_path / "runs" / "pix2pix")
    arr = np.random.default_rng(1).integers(0, 255, (21, 35, 3), dtype=np.uint8)
    out = tr(arr)
    assert out.shape == (21, 35, 3) and out.dtype == np.uint8
    assert np.array_equal(np.asarray(tr(Image.fromarray(arr))), out)
    assert tr(torch.zeros(3, 40, 40)).shape == (3, 40, 40)


def test_time_budget_stops_training_and_saves(tmp_path):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.time_budget_min=0.0001", "train.epochs=1000"]) == 0
    state = load_checkpoint(tmp_path / "runs" / "pix2pix")
    assert 1 <= state["step"] < 50


def test_evaluation_during_training_keeps_the_best_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path)
    args = ["--config", str(cfg), "--set", "train.max_steps=4", "eval.every=2", "eval.root=builtin:shapes",
            "eval.max_items=4", "eval.best=psnr", "eval.metrics=[psnr, ssim]"]
    assert train_main(args) == 0
    run = tmp_path / "runs" / "pix2pix"
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/psnr" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(0 < r["eval/psnr"] < 100 and -1 <= r["eval/ssim"] <= 1 for r in evals)
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best"] == max(r["eval/psnr"] for r in evals)
    assert best["step"] == max(evals, key=lambda r: r["eval/psnr"])["step"]


def test_evaluation_during_training_writes_a_page_per_evaluation(tmp_path):
    cfg = tiny_config(tmp_path)
    args = ["--config", str(cfg), "--set", "train.max_steps=4", "eval.every=2", "eval.root=builtin:shapes",
            "eval.max_items=3", "eval.html=true", "eval.metrics=[psnr]"]
    assert train_main(args) == 0
    run = tmp_path / "runs" / "pix2pix"
    pages = sorted(p.name for p in (run / "eval").iterdir())
    assert pages == ["step_0000002", "step_0000004"]
    page = (run / "eval" / "step_0000004" / "index.html").read_text()
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/psnr" in r]
    assert f"{evals[-1]['eval/psnr']:.4g}"[:4] in page
    for column in range(3):  # input, output, target of each of the 3 images
        assert len(list((run / "eval" / "step_0000004" / "img" / str(column)).iterdir())) == 3


def test_unknown_eval_metric_is_a_config_error(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "eval.every=2", "eval.root=builtin:shapes",
                       "eval.metrics=[psnr, fidd]"]) == 2
    assert "eval.metrics[1]: unknown metric 'fidd' (did you mean 'fid'?)" in capsys.readouterr().err


def test_translate_aligned_inputs_uses_one_half(tmp_path):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    rng = np.random.default_rng(0)
    pair = rng.integers(0, 255, (40, 80, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "p.png", pair)
    write_image(tmp_path / "half" / "p.png", pair[:, :40])
    base = ["--checkpoint", str(tmp_path / "runs" / "pix2pix")]
    assert translate_main(base + ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "o1"), "--aligned"]) == 0
    assert translate_main(base + ["--input", str(tmp_path / "half"), "--output", str(tmp_path / "o2")]) == 0
    assert np.array_equal(read_image(tmp_path / "o1" / "p.png"), read_image(tmp_path / "o2" / "p.png"))
    assert read_image(tmp_path / "o1" / "p.png").shape == (40, 40, 3)
    # --ext changes the format, not the name; --resize translates at another scale
    assert translate_main(base + ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "o3"), "--aligned",
                                  "--ext", "jpg", "--resize", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "o3").iterdir()) == [".i2i-translations", "p.jpg"]
    assert read_image(tmp_path / "o3" / "p.jpg").shape == (40, 40, 3)
    assert translate_main(base + ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "o4"), "--ext", "txt"]) == 1


def test_sample_grid_layout():
    from i2i.tiling import image_grid

    a, b = torch.zeros(3, 4, 5), torch.full((3, 4, 5), -1.0)
    grid = image_grid([[a, b], [b, a]], pad=2)
    assert grid.shape == (3, 2 + 2 * 6, 2 + 2 * 7)
    assert (grid[:, 2:6, 2:7] == 0).all() and (grid[:, 2:6, 9:14] == -1).all()
    assert (grid[:, 8:12, 2:7] == -1).all() and (grid[:, 0:2] == 1).all()


@pytest.mark.parametrize("sets, message", [
    (["data.crop_size=24", "data.load_size=24"],
     "data.crop_size: 24 is not a multiple of 32, the size multiple of the AtoB generator; use 32"),
    (["data.crop_size=40", "data.load_size=40"],
     "data.crop_size: 40 is not a multiple of 32, the size multiple of the AtoB generator; use 32 or 64"),
    (["data.preprocess=none"], "data.size_multiple: 4 is not a multiple of 32, the size multiple of the AtoB generator "
                               "(data.preprocess: none rounds each image's sizes to it); use 32"),
    (["data.preprocess=none", "data.size_multiple=48"], "data.size_multiple: 48 is not a multiple of 32, the size "
                                                        "multiple of the AtoB generator (data.preprocess: none rounds "
                                                        "each image's sizes to it); use 96"),
    (["data.kind=single"], "data.kind: pix2pix trains on images of two domains (unpaired, aligned or paired), not single"),
    (["model=cyclegan", "data.kind=single", "nets.G.name=resnet_6blocks"],
     "data.kind: cyclegan trains on images of two domains"),
    (["model=unit", "data.kind=unpaired", "nets.D.name=multiscale"],
     "nets.G.name: unit needs a coupled VAE generator (unit), not 'unet'"),
])
def test_config_that_fails_only_with_the_built_model_is_one_line_exit_2(tmp_path, capsys, sets, message):
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", *sets]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert not (tmp_path / "runs" / "tiny").exists()  # no run folder left


def test_preprocess_none_trains_at_the_images_sizes_rounded_to_the_generators_multiple(tmp_path):
    from i2i.data.io import write_image

    for i in range(2):  # 40 x 72 px pairs: rounded to 32 x 64 for a generator of multiple 32
        write_image(tmp_path / "odd" / "train" / f"{i}.png", np.full((40, 144, 3), 60 * i, np.uint8))
    sets = ["data.preprocess=none", "data.size_multiple=32", f"data.root={tmp_path / 'odd'}", "train.max_steps=1",
            "data.num_workers=0"]
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", *sets]) == 0
    assert load_checkpoint(tmp_path / "runs" / "pix2pix")["step"] == 1


def test_data_error_is_one_line_and_leaves_no_run_folder(tmp_path, capsys):
    from i2i.data.io import write_image

    root = tmp_path / "pairs"
    write_image(root / "trainA" / "x.png", np.zeros((8, 8, 3), np.uint8))
    write_image(root / "trainB" / "y.png", np.zeros((8, 8, 3), np.uint8))
    cfg = tiny_config(tmp_path)
    code = train_main(["--config", str(cfg), "--set", f"data.root={root}", "data.kind=paired"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: ") and "x" in err[0]
    assert not (tmp_path / "runs" / "pix2pix").exists()


def test_bf16_autocast_on_cpu_trains(tmp_path):
    cfg = tiny_config(tmp_path, "cyclegan")
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=2", "train.amp=bf16"]) == 0
    state = load_checkpoint(tmp_path / "runs" / "cyclegan")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if torch.is_tensor(v) and v.is_floating_point())


def test_repeated_set_flags_all_apply(tmp_path):
    # `--set a=1 --set b=2` is the same as `--set a=1 b=2`: no flag silently replaces an earlier one
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=2", "--set", "train.name=both"]) == 0
    run = tmp_path / "runs" / "both"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
