"""train.init_from: a new run that starts from another run's weights (fine-tuning)."""
import shutil

import torch

from i2i.checkpoint import load_checkpoint
from i2i.cli.export import main as export_main
from i2i.cli.train import main as train_main
from i2i.configure import load_config
from i2i.engine.trainer import Trainer

PIX2PIX = {"model": "pix2pix", "data": {"kind": "aligned"},
           "nets": {"G": {"name": "unet", "ngf": 4, "num_downs": 5}, "D": {"name": "patchgan", "ndf": 4, "n_layers": 2}}}


def _trainer(path, tmp_path, *sets):
    return Trainer(load_config(path, list(sets)), tmp_path / "probe")


def test_a_new_run_starts_from_the_weights_and_nothing_else(tmp_path, tiny_run, capsys):
    assert train_main(["--config", str(tiny_run("base", PIX2PIX, max_steps=3))]) == 0
    base = load_checkpoint(tmp_path / "runs" / "base")
    capsys.readouterr()
    trainer = _trainer(tiny_run("tuned", PIX2PIX, init_from=str(tmp_path / "runs" / "base")), tmp_path)
    err = capsys.readouterr().err
    assert "initialised G, D from" in err and "step 3" in err and "start anew" in err
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, base["model"][key]), key
    assert trainer.step == 0 and all(not o.state for o in trainer.optimizers.values())
    # and it trains on from there, as a run of its own
    assert train_main(["--config", str(tiny_run("tuned2", PIX2PIX, max_steps=2,
                                                init_from=str(tmp_path / "runs" / "base")))]) == 0
    tuned = load_checkpoint(tmp_path / "runs" / "tuned2")
    assert tuned["step"] == 2 and tuned["config"]["train"]["init_from"] == str(tmp_path / "runs" / "base")
    # a fresh run of the same seed differs: the weights came from the file
    fresh = _trainer(tiny_run("fresh", PIX2PIX), tmp_path)
    assert not torch.equal(fresh.model.state_dict()["G.model.model.0.weight"], base["model"]["G.model.model.0.weight"])


def test_an_exported_generator_starts_g_and_leaves_d_fresh(tmp_path, tiny_run, capsys):
    assert train_main(["--config", str(tiny_run("base", PIX2PIX, max_steps=2))]) == 0
    assert export_main(["--checkpoint", str(tmp_path / "runs" / "base"), "--format", "safetensors",
                        "--weights", "raw", "--output", str(tmp_path / "exported")]) == 0
    base = load_checkpoint(tmp_path / "runs" / "base")["model"]
    capsys.readouterr()
    trainer = _trainer(tiny_run("tuned", PIX2PIX, init_from=str(tmp_path / "exported")), tmp_path)
    assert "D start fresh" in capsys.readouterr().err
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in base.items() if k.startswith("G."))
    assert not torch.equal(state["D.model.0.weight"], base["D.model.0.weight"])


def test_files_that_do_not_fit_are_one_line_and_leave_no_run(tmp_path, tiny_run, capsys):
    assert train_main(["--config", str(tiny_run("base", PIX2PIX, max_steps=1))]) == 0
    wider = {**PIX2PIX, "nets": {**PIX2PIX["nets"], "G": {"name": "unet", "ngf": 8, "num_downs": 5}}}
    cyclegan = {"model": "cyclegan", "nets": {"G": {"name": "resnet", "ngf": 4, "n_blocks": 1},
                                              "D": {"name": "patchgan", "ndf": 4, "n_layers": 1}}}
    cases = [(tiny_run("wide", wider, init_from=str(tmp_path / "runs" / "base")), "of another shape"),
             (tiny_run("cyc", cyclegan, init_from=str(tmp_path / "runs" / "base")), "holds networks D, G that the model of this config (networks G_A, G_B, D_A, D_B) does"),
             (tiny_run("gone", PIX2PIX, init_from=str(tmp_path / "nowhere")), "no such file or folder")]
    for config, says in cases:
        capsys.readouterr()
        assert train_main(["--config", str(config)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "train.init_from" in err[0] and says in err[0], err
        assert not (tmp_path / "runs" / config.stem).exists()


def test_a_resumed_run_ignores_init_from(tmp_path, tiny_run):
    assert train_main(["--config", str(tiny_run("base", PIX2PIX, max_steps=1))]) == 0
    assert train_main(["--config", str(tiny_run("tuned", PIX2PIX, max_steps=2,
                                                init_from=str(tmp_path / "runs" / "base")))]) == 0
    before = load_checkpoint(tmp_path / "runs" / "tuned")["model"]
    shutil.rmtree(tmp_path / "runs" / "base")  # the source is gone: not needed
    assert train_main(["--resume", str(tmp_path / "runs" / "tuned"), "--set", "train.max_steps=3"]) == 0
    after = load_checkpoint(tmp_path / "runs" / "tuned")
    assert after["step"] == 3 and not torch.equal(after["model"]["G.model.model.0.weight"],
                                                  before["G.model.model.0.weight"])
