"""Finite divergence: a watched loss far above its running level for many log steps rolls the run back to a
healthy checkpoint with lower learning rates, and stops with one line after too many rollbacks."""
import pytest

from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.config import DivergenceConfig
from i2i.engine.divergence import DivergenceGuard
from i2i.errors import ConfigError
from reliability_helpers import records, tiny_config


def test_the_level_is_a_moving_average_of_healthy_intervals_and_a_streak_of_high_ones_diverges():
    guard = DivergenceGuard(DivergenceConfig(watch=["L1"], factor=2.0, patience=2, warmup=2, smoothing=0.5))
    assert not guard.observe(10, {"L1": 1.0, "other": 9.0})
    assert guard.level == {"L1": 1.0}
    assert not guard.observe(20, {"L1": 3.0})  # not warm yet (1 healthy log step): taken into the level
    assert guard.level["L1"] == pytest.approx(0.5 * 1.0 + 0.5 * 3.0)
    assert not guard.observe(30, {"L1": 3.9})  # below 2 x 2.0
    assert guard.level["L1"] == pytest.approx(0.5 * 2.0 + 0.5 * 3.9) and guard.last_healthy == 30
    assert not guard.observe(40, {"L1": 6.0})  # above 2 x 2.95 = 5.9: high, streak 1
    assert guard.streak == 1 and guard.level["L1"] == pytest.approx(2.95)  # high intervals leave the level alone
    assert guard.describe() == "L1 6 against its level 2.95"
    assert not guard.observe(50, {"L1": 1.0})  # back to its level: the streak ends
    assert guard.streak == 0 and guard.last_healthy == 50
    assert not guard.observe(60, {"L1": 100.0})
    assert guard.observe(70, {"L1": 100.0})  # patience 2
    assert guard.last_healthy == 50


def test_non_finite_values_are_left_to_the_bad_step_guard_and_unknown_names_are_one_line():
    guard = DivergenceGuard(DivergenceConfig(watch=["L1"], warmup=1, patience=1))
    assert not guard.observe(1, {"L1": 1.0})
    assert not guard.observe(2, {"L1": float("nan")}) and guard.streak == 0
    with pytest.raises(ConfigError, match=r"train.divergence.watch: 'G_L2' is not a loss this model logs "
                                          r"\(it logs: G_L1, lr_G\)"):
        DivergenceGuard(DivergenceConfig(watch=["G_L2"])).observe(1, {"G_L1": 1.0, "lr_G": 0.1})
    assert not DivergenceGuard(DivergenceConfig()).observe(1, {})  # off by default


def test_the_rollback_target_is_the_newest_checkpoint_no_later_than_the_last_healthy_log_step(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (3, 6, 9):
        (folder / f"step_{step:07d}.pt").write_bytes(b"")
    (folder / "best.pt").write_bytes(b"")
    guard = DivergenceGuard(DivergenceConfig(watch=["L1"]))
    guard.last_healthy = 8
    assert guard.rollback_target(tmp_path).name == "step_0000006.pt"
    guard.last_healthy = 2
    assert guard.rollback_target(tmp_path) is None


def diverge_at(monkeypatch, steps):
    """The guard finds the run diverged at these steps (the trainer's reaction is what is tested here)."""
    original = DivergenceGuard.observe

    def observe(self, step, means):
        if step in steps:
            steps.discard(step)
            self.high = {"G_L1": (9.0, 1.0)}
            return True
        return original(self, step, means)

    monkeypatch.setattr(DivergenceGuard, "observe", observe)


def test_a_diverged_run_rolls_back_with_lower_learning_rates_and_finishes(tmp_path, monkeypatch, capsys):
    # 8 steps; checkpoints at 3, 4 (epoch end), 6 and 8; diverged at step 5: back to step 4, lr x 0.5
    cfg = tiny_config(tmp_path, epochs=2, epochs_decay=0)
    diverge_at(monkeypatch, {5})
    assert train_main(["--config", str(cfg), "--set", "train.divergence.watch=[G_L1]", "optim.default.lr=0.001",
                       "optim.default.schedule=constant"]) == 0
    err = capsys.readouterr().err
    assert "warning: training diverged at step 5: G_L1 9 against its level 1 for 5 log steps; rolled back to " \
           "step_0000004.pt with the learning rates x 0.5 (rollback 1 of 2)" in err
    run = tmp_path / "runs" / "tiny"
    recs = records(run)
    assert [r["step"] for r in recs] == list(range(1, 9))  # each step once: the run that went on
    assert [r["train/lr_G"] for r in recs] == [0.001] * 4 + [0.0005] * 4
    state = load_checkpoint(run)
    assert state["step"] == 8 and state["divergence"] == {"rollbacks": 1}
    assert state["schedulers"]["G"]["base_lrs"] == [0.0005]
    assert state["optimizers"]["D"]["param_groups"][0]["lr"] == 0.0005


def test_too_many_rollbacks_stop_with_one_line(tmp_path, monkeypatch, capsys):
    cfg = tiny_config(tmp_path, epochs=2, epochs_decay=0)
    diverge_at(monkeypatch, {5, 6, 7})
    code = train_main(["--config", str(cfg), "--set", "train.divergence.watch=[G_L1]",
                       "train.divergence.max_rollbacks=1", "optim.default.schedule=constant"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == ("error: training diverged at step 6: G_L1 9 against its level 1 for 5 log steps; stopped: "
                       "after 1 rollback(s) (train.divergence.max_rollbacks) (lower the learning rate with --set, "
                       "then --resume)")


def test_without_a_healthy_checkpoint_the_run_stops_with_one_line(tmp_path, monkeypatch, capsys):
    cfg = tiny_config(tmp_path, epochs=2, epochs_decay=0)
    diverge_at(monkeypatch, {2})
    assert train_main(["--config", str(cfg), "--set", "train.divergence.watch=[G_L1]"]) == 1
    assert "stopped: no checkpoint of a healthy step is left to roll back to" in capsys.readouterr().err
