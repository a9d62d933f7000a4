"""Resuming at an epoch boundary, from every kind of checkpoint (a step checkpoint written when the epoch ended,
best.pt written by the evaluation of the epoch's last step, the checkpoint of the very last step, one of a larger
data set) continues as the uninterrupted run does and ends; a stop signal ends a pass that trains no step."""
import signal

import pytest
import torch

from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.configure import load_config
from i2i.engine.guard import StopTraining
from i2i.engine.trainer import Trainer
from reliability_helpers import losses, tiny_config

EVAL = ["eval.every=4", "eval.best=psnr", "eval.max_items=2"]  # best.pt at step 4, the last step of epoch 1


@pytest.fixture(autouse=True)
def time_limit():
    """A resume that loops forever fails the test instead of hanging the suite."""
    def expire(*_):
        raise TimeoutError("the run did not end")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(180)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    assert train_main(["--config", str(tiny_config(tmp)), "--set", *EVAL]) == 0  # 2 epochs of 4 steps
    return tmp / "runs" / "tiny"


def same_weights(a, b):
    a, b = load_checkpoint(a), load_checkpoint(b)
    assert (a["step"], a["epoch"], a["batch_in_epoch"]) == (b["step"], b["epoch"], b["batch_in_epoch"])
    for key, value in a["model"].items():
        if torch.is_tensor(value):
            torch.testing.assert_close(b["model"][key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", ["best.pt", "step_0000004.pt"])
def test_a_resume_at_the_end_of_an_epoch_goes_on_as_the_uninterrupted_run(tmp_path, full, name):
    if name == "best.pt":  # a run of the first epoch only: its best.pt is of step 4
        assert train_main(["--config", str(tiny_config(tmp_path)), "--set", *EVAL, "train.max_steps=4"]) == 0
        run = tmp_path / "runs" / "tiny"
        ckpt, out = run / "checkpoints" / name, run
    else:
        ckpt, out = full / "checkpoints" / name, full.with_name("tiny-from-step4")
    state = load_checkpoint(ckpt)
    # best.pt holds the state before the epoch ended; the step checkpoint the one after
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == ((4, 0, 4) if name == "best.pt" else (4, 1, 0))
    assert train_main(["--resume", str(ckpt), "--set", "train.max_steps=0"]) == 0
    assert losses(out) == losses(full) and sorted(losses(out)) == list(range(1, 9))
    same_weights(full / "checkpoints" / "step_0000008.pt", out / "checkpoints" / "step_0000008.pt")


def test_a_checkpoint_of_the_last_step_ends_at_once_or_goes_on_when_the_run_is_extended(tmp_path):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "eval.every=8", "eval.best=psnr", "eval.max_items=2"]) == 0
    run = tmp_path / "runs" / "tiny"
    best, last = run / "checkpoints" / "best.pt", run / "checkpoints" / "step_0000008.pt"
    assert (load_checkpoint(best)["batch_in_epoch"], load_checkpoint(last)["batch_in_epoch"]) == (4, 0)
    assert train_main(["--resume", str(run)]) == 0  # nothing left to train
    assert load_checkpoint(last)["step"] == 8 and not (run / "checkpoints" / "step_0000009.pt").exists()
    # one more epoch: from best.pt and from the step checkpoint alike
    assert train_main(["--resume", str(best), "--set", "train.epochs_decay=2"]) == 0
    assert train_main(["--resume", str(last), "--set", "train.epochs_decay=2"]) == 0
    for ckpt in run / "checkpoints" / "step_0000012.pt", tmp_path / "runs" / "tiny-from-step8" / "checkpoints" / "step_0000012.pt":
        state = load_checkpoint(ckpt)
        assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (12, 3, 0)


def test_a_resume_past_the_end_of_a_smaller_data_set_starts_the_next_epoch(tmp_path):
    assert train_main(["--config", str(tiny_config(tmp_path))]) == 0
    step3 = tmp_path / "runs" / "tiny" / "checkpoints" / "step_0000003.pt"  # 3 of 4 batches of epoch 1
    assert train_main(["--resume", str(step3), "--set", "data.max_items=4"]) == 0  # 2 batches an epoch now
    state = load_checkpoint(tmp_path / "runs" / "tiny-from-step3" / "checkpoints" / "step_0000004.pt")
    # epoch 1 had ended (3 batches of 2); step 4 is the first batch of epoch 2, the last step of 2 x 2
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (4, 1, 1)


def test_a_stop_signal_ends_a_pass_that_trains_no_step(tmp_path, monkeypatch):
    trainer = Trainer(load_config(tiny_config(tmp_path)), tmp_path / "run")

    def no_batches():  # a signal arrives while the loader gives nothing
        trainer.signals._handle(signal.SIGTERM, None)
        return iter(())

    monkeypatch.setattr(trainer, "_batches", no_batches)
    monkeypatch.setattr(trainer, "batch_in_epoch", 2)
    with pytest.raises(StopTraining) as stop:
        trainer.fit()
    assert stop.value.exit_code == 143 and "interrupted by SIGTERM at step 0" in str(stop.value)
    assert trainer.epoch == 1  # the empty rest of epoch 1 ended it


def test_a_data_set_that_gives_no_batch_stops_with_one_line(tmp_path, monkeypatch):
    trainer = Trainer(load_config(tiny_config(tmp_path)), tmp_path / "run")
    monkeypatch.setattr(trainer, "_batches", lambda: iter(()))
    with pytest.raises(StopTraining, match="the training data gave no batch in epoch 1"):
        trainer.fit()
