"""Each after-step hook of the training loop alone, on a stand-in for the trainer (tests/test_divergence.py,
test_clean_stops.py, test_epoch_boundaries.py and test_host_sync.py run them inside real trainings)."""
import json
import signal
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from i2i.config import DivergenceConfig, EvalConfig
from i2i.engine import hooks as hooks_module
from i2i.checkpoint import load_checkpoint, save_checkpoint
from i2i.engine.divergence import DivergenceGuard, DivergenceHook
from i2i.engine.ema import EMA
from i2i.engine.guard import StopTraining
from i2i.engine.hooks import (BadStepHook, CheckpointHook, EvalHook, Hook, LogHook, RolledBack, SampleHook,
                              SignalHook, StepEnd, TimeBudget)
from i2i.errors import DataError
from i2i.signals import StopSignals


class Logger:
    def __init__(self, run_dir):
        self.metrics_path, self.scalar_records, self.sample_steps, self.closed = run_dir / "metrics.jsonl", [], [], 0

    def scalars(self, step, values, prefix="train"):
        self.scalar_records.append((prefix, step, dict(values)))

    def samples(self, step, rows):
        self.sample_steps.append((step, [r.tolist() for r in rows]))

    def close(self):
        self.closed += 1


class Model(nn.Linear):
    def __init__(self):
        super().__init__(2, 1)

    def loss_logs(self):
        return {"k_t": 0.25}

    def visuals(self, batch, out):
        return [batch["A"], out]


class StandIn:
    """What the hooks use of a trainer: one process on the CPU, a linear model, saves that are only recorded."""

    def __init__(self, run_dir, divergence=None):
        self.run_dir, self.device = run_dir, torch.device("cpu")
        self.dist = SimpleNamespace(enabled=False, is_main=True, rank=0, world_size=1)
        self.cfg = SimpleNamespace(train=SimpleNamespace(divergence=divergence or DivergenceConfig()),
                                   log=SimpleNamespace(tensorboard=False))
        self.model = Model()
        self.optimizers = {"G": torch.optim.SGD(self.model.parameters(), lr=0.1)}
        self.schedulers = {"G": torch.optim.lr_scheduler.LambdaLR(self.optimizers["G"], lambda epoch: 1.0)}
        self.logger, self.ema, self.best, self.signals = Logger(run_dir), None, None, StopSignals(quiet=True)
        self.divergence = DivergenceGuard(self.cfg.train.divergence)
        self.step = self.epoch = 0
        self.total_steps, self.saved, self.saved_step = 100, [], -1

    def save(self):
        self.saved.append((self.step, self.epoch))
        return self.run_dir / f"step_{self.step:07d}.pt"

    def state_dict(self):
        return {"config": {}, "step": self.step, "model": self.model.state_dict()}

    def load_state(self, state):
        self.step = state["step"]

    def stop_on_signal(self):
        return StopTraining(f"interrupted by {self.signals.requested.name} at step {self.step}")


def run(trainer, hooks, steps, total=None, epoch_steps=0, logs=lambda step: {}, out=None):
    """The loop of :meth:`Trainer.fit` with no training: the hooks after each of ``steps`` steps."""
    for hook in hooks:
        hook.before_fit(trainer)
    try:
        for step in range(1, steps + 1):
            trainer.step = step
            state = StepEnd(step, {"A": torch.full((1, 1), float(step))}, logs(step), out, last=step == total,
                            epoch_done=bool(epoch_steps) and step % epoch_steps == 0)
            for hook in hooks:
                hook.after_step(trainer, state)
            if state.epoch_done:
                trainer.epoch += 1
                for hook in hooks:
                    hook.after_epoch(trainer, state)
            if state.last:
                return
    finally:
        for hook in hooks:
            hook.after_fit(trainer)


def test_a_hook_is_due_at_multiples_of_its_interval_and_at_the_last_step():
    hook = Hook()
    hook.every = 3
    assert [s for s in range(1, 10) if hook.due(StepEnd(s, {}, {}, None, last=False, epoch_done=False))] == [3, 6, 9]
    assert hook.due(StepEnd(4, {}, {}, None, last=True, epoch_done=False))
    hook.every = 0
    assert not hook.due(StepEnd(6, {}, {}, None, last=False, epoch_done=False))
    assert hook.due(StepEnd(7, {}, {}, None, last=True, epoch_done=False))


def test_checkpoints_at_the_interval_at_epoch_ends_once_ended_and_at_the_last_step(tmp_path):
    trainer = StandIn(tmp_path)
    run(trainer, [CheckpointHook(3)], steps=14, total=14, epoch_steps=4)
    # (step, epoch when saved): an epoch's end is saved once, after the epoch ended, also when on the interval (12)
    assert trainer.saved == [(3, 0), (4, 1), (6, 1), (8, 2), (9, 2), (12, 3), (14, 3)]


def test_the_time_budget_makes_the_step_it_ran_out_in_the_last(tmp_path, monkeypatch):
    clock = iter([1000.0, 1030.0, 1059.0, 1061.0])
    monkeypatch.setattr(hooks_module.time, "monotonic", lambda: next(clock))
    budget, trainer = TimeBudget(1, every=5), StandIn(tmp_path)
    budget.before_fit(trainer)  # at 1000 s: the deadline is 1060 s
    states = [StepEnd(s, {}, {}, None, last=False, epoch_done=False) for s in (1, 2, 3)]
    for state in states:
        budget.after_step(trainer, state)
    assert [s.last for s in states] == [False, False, True]


def test_logs_are_means_since_the_last_log_step_with_the_loss_logs_and_learning_rates(tmp_path):
    trainer, log = StandIn(tmp_path), LogHook(2, progress=False, name="t")
    seen = []

    class Seen(Hook):
        def after_step(self, trainer, state):
            seen.append(dict(state.means))

    run(trainer, [log, Seen()], steps=5, total=5, logs=lambda s: {"G_L1": torch.tensor(float(s)), "D": torch.tensor(1.0)})
    records = trainer.logger.scalar_records
    assert [(prefix, step) for prefix, step, _ in records] == [("train", 2), ("train", 4), ("train", 5)]
    assert [r["G_L1"] for _, _, r in records] == [1.5, 3.5, 5.0]  # (1 + 2) / 2, (3 + 4) / 2, the last alone
    assert all(r["D"] == 1.0 and r["k_t"] == 0.25 and r["lr_G"] == 0.1 and r["sec_per_it"] > 0 for _, _, r in records)
    assert [bool(m) for m in seen] == [False, True, False, True, True] and seen[1] == records[0][2]


def test_the_bad_step_guard_is_read_at_log_steps_only_and_stops_with_a_checkpoint(tmp_path):
    trainer = StandIn(tmp_path)
    reads = []
    trainer.guard = SimpleNamespace(first="G_gan = nan", streak=3, hit=3,
                                    read=lambda: reads.append(trainer.step) or trainer.step == 4)
    with pytest.raises(StopTraining) as stop:
        run(trainer, [BadStepHook(2)], steps=6)
    assert reads == [2, 4] and trainer.saved == [(4, 0)]
    assert str(stop.value) == ("training stopped at step 4: non-finite G_gan = nan for 3 steps in a row up to step 3, "
                               "and no update since (train.max_bad_steps); the last good state is saved in "
                               f"{tmp_path / 'step_0000004.pt'} (lower the learning rate with --set, or check the "
                               "data, then --resume)")


def test_samples_at_their_interval_and_the_last_step_from_the_batch_and_outputs(tmp_path):
    trainer = StandIn(tmp_path)
    run(trainer, [SampleHook(3)], steps=7, total=7, out=torch.zeros(1, 1))
    assert trainer.logger.sample_steps == [(s, [[[float(s)]], [[0.0]]]) for s in (3, 6, 7)]


class Evaluator:
    def __init__(self, scores, trainer):
        self.scores, self.trainer, self.weights = list(scores), trainer, []

    def run(self, model, html):
        self.weights.append(float(model.weight.detach().sum()))
        score = self.scores.pop(0)
        if isinstance(score, Exception):
            raise score
        return {"psnr": score}

    @staticmethod
    def is_better(name, value, best):
        return best is None or value > best


def test_evaluation_keeps_the_best_state_scored_with_the_ema_weights(tmp_path):
    trainer = StandIn(tmp_path)
    trainer.ema = EMA(trainer.model, [trainer.model], decay=0.5)
    trainer.ema.shadow["weight"].fill_(0.5)  # the averaged weights differ from the live ones
    live = trainer.model.weight.detach().clone()
    evaluator = Evaluator([10.0, 8.0, 12.0], trainer)
    run(trainer, [EvalHook(EvalConfig(every=2, best="psnr"), evaluator)], steps=6)
    assert evaluator.weights == [1.0, 1.0, 1.0]  # 2 x 0.5: scored with the EMA weights ...
    assert torch.equal(trainer.model.weight, live)  # ... and the live ones back after each evaluation
    assert [(p, s, r) for p, s, r in trainer.logger.scalar_records] == [
        ("eval", 2, {"psnr": 10.0}), ("eval", 4, {"psnr": 8.0}), ("eval", 6, {"psnr": 12.0})]
    assert trainer.best == 12.0 and load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == 6


def test_evaluation_with_the_raw_weights_and_an_unreadable_validation_set_stops_with_a_checkpoint(tmp_path):
    trainer = StandIn(tmp_path)
    trainer.ema = EMA(trainer.model, [trainer.model], decay=0.5)
    trainer.ema.shadow["weight"].fill_(0.5)
    evaluator = Evaluator([1.0, DataError("cannot read image b.png")], trainer)
    with pytest.raises(StopTraining) as stop:
        run(trainer, [EvalHook(EvalConfig(every=1, best="psnr", ema=False), evaluator)], steps=3)
    assert evaluator.weights == [float(trainer.model.weight.detach().sum())] * 2
    assert trainer.saved == [(2, 0)]
    assert str(stop.value) == (f"training stopped at step 2: evaluation: cannot read image b.png; checkpoint "
                               f"{tmp_path / 'step_0000002.pt'} (fix the data, then --resume)")


def test_a_signal_stops_after_the_step_unless_it_was_the_last(tmp_path):
    trainer, hook = StandIn(tmp_path), SignalHook(5)
    before = signal.getsignal(signal.SIGTERM)
    hook.before_fit(trainer)
    try:
        assert signal.getsignal(signal.SIGTERM) == trainer.signals._handle
        trainer.step = 3
        trainer.signals._handle(signal.SIGTERM, None)
        hook.after_step(trainer, StepEnd(3, {}, {}, None, last=True, epoch_done=False))  # the run has finished
        with pytest.raises(StopTraining, match="interrupted by SIGTERM at step 3"):
            hook.after_step(trainer, StepEnd(3, {}, {}, None, last=False, epoch_done=False))  # (not a log step)
    finally:
        hook.after_fit(trainer)
    assert signal.getsignal(signal.SIGTERM) == before


def diverging(tmp_path, max_rollbacks):
    """A stand-in at step 3 of a run whose L1 was 1 at steps 1 and 2 (checkpointed), then 10."""
    cfg = DivergenceConfig(watch=["L1"], warmup=1, patience=1, lr_factor=0.5, max_rollbacks=max_rollbacks)
    trainer = StandIn(tmp_path, cfg)
    save_checkpoint({"step": 2, "model": {}, "config": {}, "divergence": {"rollbacks": 0}},
                    tmp_path / "checkpoints" / "step_0000002.pt")
    trainer.logger.metrics_path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)))
    hook = DivergenceHook(1)
    for step, value in ((1, 1.0), (2, 1.0)):
        hook.after_step(trainer, StepEnd(step, {}, {}, None, last=False, epoch_done=False, means={"L1": value}))
    trainer.step = 3
    return trainer, hook, StepEnd(3, {}, {}, "outputs", last=False, epoch_done=False, means={"L1": 10.0})


def test_divergence_rolls_back_to_the_last_healthy_checkpoint_with_lower_learning_rates(tmp_path, capsys):
    trainer, hook, state = diverging(tmp_path, max_rollbacks=1)
    with pytest.raises(RolledBack):
        hook.after_step(trainer, state)
    assert trainer.step == 2 and trainer.saved_step == 2 and trainer.divergence.rollbacks == 1
    assert trainer.optimizers["G"].param_groups[0]["lr"] == pytest.approx(0.05)
    assert trainer.schedulers["G"].base_lrs == [pytest.approx(0.05)]
    assert state.out is None  # not kept while the checkpoint loads
    assert [json.loads(line)["step"] for line in trainer.logger.metrics_path.read_text().splitlines()] == [1, 2]
    assert "rolled back to step_0000002.pt with the learning rates x 0.5 (rollback 1 of 1)" in capsys.readouterr().err


def test_divergence_after_the_last_rollback_stops_with_one_line(tmp_path):
    trainer, hook, state = diverging(tmp_path, max_rollbacks=0)
    with pytest.raises(StopTraining) as stop:
        hook.after_step(trainer, state)
    assert str(stop.value) == ("training diverged at step 3: L1 10 against its level 1 for 1 log steps; stopped: "
                               "after 0 rollback(s) (train.divergence.max_rollbacks) (lower the learning rate with "
                               "--set, then --resume)")
    assert trainer.step == 3 and trainer.optimizers["G"].param_groups[0]["lr"] == 0.1
