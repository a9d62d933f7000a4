"""NaN and Inf: a bad step makes no update, too many in a row stop training with a checkpoint,
metrics.jsonl stays JSON, non-finite weights and settings are refused."""
import json

import pytest
import torch

from i2i.checkpoint import list_checkpoints, load_checkpoint
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.configure import load_config
from i2i.engine.logger import RunLogger
from i2i.engine.trainer import Trainer
from i2i.errors import CheckpointError
from i2i.models.pix2pix import Pix2Pix
from reliability_helpers import tiny_config


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def nan_g_loss(monkeypatch, bad_calls):
    """Pix2Pix's G loss becomes NaN on the given (1-based) calls."""
    original, calls = Pix2Pix.g_loss, [0]

    def g_loss(self, batch, out):
        calls[0] += 1
        loss, logs = original(self, batch, out)
        if calls[0] in bad_calls:
            loss, logs = loss * float("nan"), {**logs, "G_gan": logs["G_gan"] * float("nan")}
        return loss, logs

    monkeypatch.setattr(Pix2Pix, "g_loss", g_loss)


def test_metrics_jsonl_is_json_whatever_the_values(tmp_path):
    logger = RunLogger(tmp_path, tensorboard=False)
    logger.scalars(1, {"a": float("nan"), "b": float("inf"), "c": -float("inf"), "d": 0.5})
    (line,) = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert strict_json(line) == {"step": 1, "train/a": "nan", "train/b": "inf", "train/c": "-inf", "train/d": 0.5}


def test_a_bad_phase_makes_no_update(tmp_path, monkeypatch):
    cfg = load_config(tiny_config(tmp_path), ["log.tensorboard=false"])
    trainer = Trainer(cfg, tmp_path / "run")
    batch = next(iter(trainer.loader))
    nan_g_loss(monkeypatch, {1})
    g_before = {k: v.clone() for k, v in trainer.model.G.state_dict().items()}
    d_before = [p.clone() for p in trainer.model.D.parameters()]
    assert len(trainer.optimizers["G"].state) == 0
    trainer.train_step(batch)
    assert trainer.bad_losses == ["G_gan = nan"]
    for k, v in trainer.model.G.state_dict().items():  # weights and batch-norm statistics as they were
        torch.testing.assert_close(v, g_before[k], msg=k)
    # Adam took no step (the fused kernel skipped it on the device: its state is there, at its initial zeros)
    g_state = trainer.optimizers["G"].state.values()
    assert all(not t.any() for state in g_state for t in state.values())
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, trainer.model.D.parameters()))  # D's phase was fine
    trainer.train_step(batch)
    assert trainer.bad_losses == [] and all(float(state["step"]) == 1 for state in g_state)


def test_a_short_streak_is_skipped_with_one_warning(tmp_path, monkeypatch, capsys):
    nan_g_loss(monkeypatch, {3, 4})
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "train.max_bad_steps=3"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "step 3: non-finite G_gan = nan: step skipped" in err
    assert "step 5: losses finite again after 2 skipped step(s)" in err
    lines = (tmp_path / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines()
    logged = [strict_json(line) for line in lines]
    assert [r["train/G_gan"] for r in logged][2:4] == ["nan", "nan"]
    state = load_checkpoint(tmp_path / "runs" / "tiny")
    assert state["step"] == 8


def test_too_many_bad_steps_in_a_row_stop_with_a_checkpoint_of_the_last_good_state(tmp_path, monkeypatch, capsys):
    cfg = tiny_config(tmp_path, checkpoint_every=100)
    assert train_main(["--config", str(cfg), "--set", "train.name=good", "train.max_steps=2"]) == 0
    capsys.readouterr()
    nan_g_loss(monkeypatch, set(range(3, 100)))
    assert train_main(["--config", str(cfg), "--set", "train.max_bad_steps=3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert sum(line.startswith("warning:") for line in err) == 1
    assert err[-1].startswith("error: training stopped at step 5: non-finite G_gan = nan for 3 steps in a row "
                              "(train.max_bad_steps); the last good state is saved in ")
    run = tmp_path / "runs" / "tiny"
    assert [p.name for p in list_checkpoints(run)] == ["step_0000004.pt", "step_0000005.pt"]  # epoch end, stop
    stopped, good = load_checkpoint(run), load_checkpoint(tmp_path / "runs" / "good")
    assert stopped["step"] == 5
    for key, value in good["model"].items():  # G as after step 2, the last good one
        if key.startswith("G.") and value.is_floating_point():
            torch.testing.assert_close(stopped["model"][key], value, msg=key)
    for line in (run / "metrics.jsonl").read_text().splitlines():
        strict_json(line)


def test_non_finite_weights_are_refused_at_load(tmp_path, capsys):
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "train.max_steps=4"]) == 0
    run = tmp_path / "runs" / "tiny"
    path = run / "checkpoints" / "step_0000004.pt"
    state = torch.load(path, weights_only=True)
    key = next(k for k, v in state["model"].items() if k.startswith("G.") and v.is_floating_point())
    state["model"][key][0] = float("nan")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"weights hold NaN or Inf \(model G\.") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    capsys.readouterr()
    img = tmp_path / "in"
    img.mkdir()
    assert translate_main(["--checkpoint", str(path), "--input", str(img), "--output", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip().startswith("error: ")
    # resuming the run falls back to the newest usable checkpoint
    assert train_main(["--resume", str(run), "--set", "train.max_steps=5"]) == 0
    assert "resuming from the newest readable one, step_0000003.pt" in capsys.readouterr().err
    assert load_checkpoint(run)["step"] == 5


@pytest.mark.parametrize("value", ["inf", ".inf", "-.inf", ".nan", "1e400"])
def test_non_finite_settings_are_config_errors(tmp_path, capsys, value):
    code = train_main(["--config", str(tiny_config(tmp_path)), "--set", f"optim.G.lr={value}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: optim.G.lr: ") and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_a_run_whose_every_step_was_skipped_says_no_update_was_made(tmp_path, monkeypatch, capsys):
    original = Pix2Pix.loss

    def loss(self, phase, batch, out):
        value, logs = original(self, phase, batch, out)
        return value * float("nan"), logs

    monkeypatch.setattr(Pix2Pix, "loss", loss)
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=3", "train.max_bad_steps=10"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no update was made: all 3 step(s) of this run were skipped (non-finite ")
    assert "the weights are as they started" in err[-1]
    # a run in which only some phases were skipped (G's, not D's) did update: exit 0
    monkeypatch.setattr(Pix2Pix, "loss", original)
    nan_g_loss(monkeypatch, set(range(1, 100)))
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=3", "train.max_bad_steps=10"]) == 0


def test_a_short_streak_between_log_steps_is_told_at_the_next_log_step(tmp_path, monkeypatch, capsys):
    nan_g_loss(monkeypatch, {2, 3})  # read at log steps 4 and 8 only
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "log.every=4"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("warning:", "note: step"))]
    assert err[0].startswith("warning: step 2: non-finite G_gan = nan: step skipped (no update); training stops after")
    assert err[1:] == ["note: step 4: losses finite again after 2 skipped step(s)"]


@pytest.mark.parametrize("kind", ["adam", "adamw", "rmsprop", "sgd"])
def test_a_cancelled_optimizer_step_changes_nothing(kind):
    """step_unless with a bad flag leaves weights and optimizer state as they were (state the step would create
    at its initial zeros, which then step exactly as a fresh optimizer's); with a good flag it is opt.step()."""
    from i2i.config import OptimConfig
    from i2i.engine.optim import make_optimizer, step_unless

    cfg = OptimConfig(type=kind, lr=0.1, momentum=0.5 if kind in ("rmsprop", "sgd") else 0.0, weight_decay=0.01)
    torch.manual_seed(0)
    nets = [torch.nn.Linear(3, 2) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [make_optimizer(list(n.parameters()), cfg, torch.device("cpu")) for n in nets]
    x = torch.randn(4, 3)

    def step(i, bad):
        opts[i].zero_grad(set_to_none=True)
        nets[i](x).pow(2).sum().backward()
        step_unless(opts[i], torch.tensor(bad))

    before = [p.clone() for p in nets[0].parameters()]
    step(0, True)  # the first step, cancelled
    assert all(torch.equal(a, b) for a, b in zip(before, nets[0].parameters()))
    assert all(not t.any() for state in opts[0].state.values() for t in state.values() if torch.is_tensor(t))
    for bad in (False, True, False):  # then both train alike, one with a cancelled step between
        step(0, bad)
        if not bad:
            step(1, False)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(opts[0].state.values(), opts[1].state.values()):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
