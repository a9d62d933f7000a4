"""Every registered GAN loss and penalty trains a tiny pix2pix for two steps from the CLI (marked slow: a run
each; the last test, one run, keeps the CLI path of a loss and a penalty in ``pytest -m "not slow"``)."""
import json
import math

import pytest
import yaml

from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
import i2i.losses  # noqa: F401  (registers the losses and penalties)
from i2i.registry import GAN_LOSSES, PENALTIES

AUTOENCODER = {"name": "autoencoder", "ndf": 8, "n_down": 2}


def run(tmp_path, losses, discriminator=None):
    cfg = {
        "model": "pix2pix",
        "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8},
                 "D": discriminator or {"ndf": 8, "n_layers": 2}},
        "losses": losses,
        "data": {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2,
                 "num_workers": 0, "max_items": 4},
        "train": {"out_dir": str(tmp_path / "runs"), "name": "run", "max_steps": 2, "checkpoint_every": 2},
        "log": {"every": 1, "sample_every": 100, "progress": False, "tensorboard": False},
    }
    path = tmp_path / "cfg.yaml"
    tmp_path.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    assert train_main(["--config", str(path)]) == 0
    run_dir = tmp_path / "runs" / "run"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        # (metrics.jsonl writes NaN and the infinities as the strings "nan", "inf", "-inf")
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in row.values()), row
    return run_dir, rows


@pytest.mark.slow
@pytest.mark.parametrize("name", GAN_LOSSES.names())
def test_every_gan_loss_trains_from_the_cli(tmp_path, name):
    energy = name in ("ebgan", "began")
    d = dict(AUTOENCODER, energy="l1" if name == "began" else "mse") if energy else None
    run_dir, rows = run(tmp_path, {"gan": name}, d)
    state = load_checkpoint(run_dir)
    if name == "began":  # the k_t controller is checkpointed and logged
        assert set(state["loss_state"]) == {"k"} and 0.0 <= state["loss_state"]["k"] <= 1.0
        assert "train/k_t" in rows[-1] and rows[-1]["train/m_global"] > 0
    else:
        assert state["loss_state"] == {}


@pytest.fixture(scope="module")
def without_penalty(tmp_path_factory):
    """The logs of the runs below without their penalty."""
    return {d: run(tmp_path_factory.mktemp("plain"), {"gan": gan}, MULTISCALE if d else None)[1]
            for d, gan in ((False, "hinge"), (True, "rahinge"))}


MULTISCALE = {"name": "multiscale", "ndf": 8, "n_layers": 1, "num_scales": 2}


#: a one-sided penalty is 0 below its target: this one is above it (the tiny D's input gradients are small)
ABOVE_ZERO = {"lp": {"target": 1e-3}}


@pytest.mark.slow
@pytest.mark.parametrize("penalty", PENALTIES.names())
def test_every_penalty_trains_from_the_cli(tmp_path, penalty, without_penalty):
    """The penalty is in the first step's D loss (the run without it has the same weights and batch: only the
    penalty differs), and with ``every: 2`` it is a phase of its own whose term is logged."""
    section = {"type": penalty, "weight": 1.0, **ABOVE_ZERO.get(penalty, {})}
    _, rows = run(tmp_path / "each", {"gan": "hinge", "penalty": section})
    assert rows[0]["train/D"] > without_penalty[False][0]["train/D"], (rows[0], without_penalty[False][0])
    _, rows = run(tmp_path / "lazy", {"gan": "hinge", "penalty": {**section, "every": 2}})
    assert rows[0]["train/D_reg"] > 0 and "train/D_reg" not in rows[1]  # a phase of its own, every 2 steps
    assert rows[0]["train/D"] == without_penalty[False][0]["train/D"]  # and no longer in the D loss


def test_multiscale_discriminator_with_relativistic_loss_and_gp(tmp_path, without_penalty):
    _, rows = run(tmp_path, {"gan": "rahinge", "penalty": {"type": "gp", "weight": 1.0}}, MULTISCALE)
    assert rows[0]["train/D"] > without_penalty[True][0]["train/D"], (rows[0], without_penalty[True][0])
