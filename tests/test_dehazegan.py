"""DehazeGAN: defaults, the perceptual term outside checkpoints and optimizers, the VGG weights message."""
import json

import pytest
import torch
import yaml

from i2i import load_translator
from i2i.checkpoint import load_checkpoint, save_checkpoint
from i2i.cli.train import main as train_main
from i2i.configure import build_config

TINY_G = {"name": "tiramisu", "n_blocks": 2, "layers": 2, "bottleneck_layers": 2, "growth": 4,
          "first_channels": 8, "up_channels": 8}


def write(tmp_path, model, **train):
    tree = {"model": model, "nets": {"G": TINY_G, "D": {"ndf": 8, "n_layers": 2}},
            "data": {"kind": "paired", "root": "builtin:haze", "load_size": 32, "crop_size": 32, "batch_size": 2,
                     "num_workers": 0, "max_items": 4},
            "train": {"out_dir": str(tmp_path / "runs"), "name": "dh", "max_steps": 2, **train},
            "log": {"every": 1, "sample_every": 100, "progress": False, "tensorboard": False}}
    path = tmp_path / "dh.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture
def no_vgg_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("I2I_VGG_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_defaults_are_the_reference():
    cfg = build_config({"model": "dehazegan", "data": {"root": "builtin:haze"}}, check_paths=False)
    assert (cfg.model.gan_w, cfg.model.l1_w, cfg.model.vgg_w, cfg.model.vgg_layers) == (2.0, 100.0, 10.0, ["pool4"])
    assert cfg.nets["G"].name == "tiramisu" and cfg.nets["D"].name == "patchgan"
    assert (cfg.optim["G"].lr, cfg.optim["G"].betas) == (1e-3, [0.5, 0.999])
    assert (cfg.data.kind, cfg.data.crop_size, cfg.data.batch_size) == ("paired", 256, 1)


def test_missing_vgg_weights_is_one_line_before_a_run_folder_exists(tmp_path, no_vgg_weights, capsys):
    assert train_main(["--config", str(write(tmp_path, "dehazegan"))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg19-dcbb9e9d.pth" in err[0] and "I2I_VGG_WEIGHTS" in err[0]
    assert not (tmp_path / "runs").exists()


def test_offline_flag_never_downloads_the_vgg_weights(tmp_path, no_vgg_weights, monkeypatch, capsys):
    monkeypatch.delenv("I2I_OFFLINE")
    monkeypatch.setenv("I2I_WEIGHTS_URL", "http://127.0.0.1:9")  # nothing may connect to it
    assert train_main(["--config", str(write(tmp_path, "dehazegan")), "--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "I2I_OFFLINE is set: put vgg19-dcbb9e9d.pth" in err[0]
    assert not (tmp_path / "runs").exists()


def test_perceptual_term_trains_and_stays_out_of_checkpoints_and_optimizers(tmp_path, no_vgg_weights):
    assert train_main(["--config", str(write(tmp_path, {"name": "dehazegan", "vgg_weights": "random"}))]) == 0
    run = tmp_path / "runs" / "dh"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train/G_vgg"] > 0 for r in rows)
    state = load_checkpoint(run)
    assert not any("vgg" in k or "perceptual" in k for k in state["model"])
    n_g = sum(1 for k, v in state["model"].items() if k.startswith("G.") and v.is_floating_point()
              and not any(s in k for s in ("running_", "num_batches")))
    assert len(state["optimizers"]["G"]["param_groups"][0]["params"]) == n_g
    # translation needs no VGG weights
    save_checkpoint({**state, "config": {**state["config"], "model": {**state["config"]["model"], "vgg_weights": ""}}},
                    run / "checkpoints" / "step_0000002.pt")
    assert load_translator(run)(torch.zeros(3, 40, 36)).shape == (3, 40, 36)


@pytest.mark.smoke
def test_quick_config_trains_on_builtin_haze(tmp_path):
    from pathlib import Path

    from i2i.configure import load_config

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "dehazegan_quick.yaml")
    assert cfg.model.vgg_w == 0 and cfg.data.root == "builtin:haze"
    assert train_main(["--config", str(write(tmp_path, {"name": "dehazegan", "vgg_w": 0}))]) == 0


def test_without_the_adversarial_term_d_is_neither_run_nor_stepped(tmp_path):
    model = {"name": "dehazegan", "gan_w": 0, "l1_w": 1, "vgg_w": 0}
    assert train_main(["--config", str(write(tmp_path, model, seed=3))]) == 0
    run = tmp_path / "runs" / "dh"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows and all("train/D" not in r and "train/G_gan" not in r and r["train/G_L1"] > 0 for r in rows)
    state = load_checkpoint(run)
    assert state["optimizers"]["D"]["state"] == {}  # D's optimizer never stepped
    cfg = build_config(yaml.safe_load((tmp_path / "dh.yaml").read_text()), check_paths=False)
    from i2i.registry import MODELS
    assert [p.name for p in MODELS.get("dehazegan")(cfg).phases()] == ["G"]
