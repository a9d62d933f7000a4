"""What the training loop does besides steps: hooks, each with its own interval.

:meth:`i2i.engine.trainer.Trainer.fit` runs one step, then calls ``after_step(trainer, state)`` of
each hook in order (``state`` is the :class:`StepEnd` of the step just done); after an epoch's last
step it ends the epoch and calls ``after_epoch(trainer, state)``.  ``before_fit`` and ``after_fit``
bracket the run (``after_fit`` also when it stops on an error).  The hooks of a run, in order
(:func:`i2i.engine.trainer.training_hooks`): the time budget, the logs, the bad-step guard, the divergence guard
(:mod:`i2i.engine.divergence`), samples, evaluation, checkpoints and stop signals.

A hook acts at the steps that are multiples of its ``every`` and at the run's last step.  One
that stops training writes a checkpoint and raises :class:`~i2i.engine.guard.StopTraining`; one
that moves the trainer back to an earlier step raises :class:`RolledBack`.  Only the hooks that act
at log steps read values from the device, so a step between two log steps never waits for it.
"""
from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from ..checkpoint import checkpoint_dir, list_checkpoints, save_checkpoint
from ..config import EvalConfig
from ..data.skipping import one_line
from ..errors import DataError
from . import distributed as dist
from . import speed
from .guard import StopTraining, finite_state

if TYPE_CHECKING:
    from .evaluate import Evaluator
    from .trainer import Trainer


@dataclass
class StepEnd:
    """The step just done, as the hooks see it."""

    step: int  #: its number (1-based)
    batch: dict[str, Any]  #: its batch, as the loader gave it
    logs: dict[str, torch.Tensor]  #: its logged losses, on the device
    out: Any  #: what the model's ``generate`` returned
    last: bool  #: the run ends with it (its last step; a hook may decide so, as the time budget does)
    epoch_done: bool  #: it was its epoch's last step
    means: dict[str, float] = field(default_factory=dict)  #: at log steps: the logged means (:class:`LogHook`)


class RolledBack(Exception):
    """Raised by a hook that moved the trainer back to an earlier step: the loop starts that epoch's pass again."""


class Hook:
    """Does nothing; a hook overrides what it needs."""

    every: int = 0  #: acts at steps that are multiples of this, and at the last step (0: at the last only)

    def due(self, state: StepEnd) -> bool:
        return state.last or (self.every > 0 and state.step % self.every == 0)

    def before_fit(self, trainer: Trainer) -> None:
        pass

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        pass

    def after_epoch(self, trainer: Trainer, state: StepEnd) -> None:
        pass

    def after_fit(self, trainer: Trainer) -> None:
        pass


class TimeBudget(Hook):
    """Makes the step during which ``minutes`` ran out the last (with several processes, which must agree, the
    first log step after it: a step does not wait for the others)."""

    def __init__(self, minutes: float, every: int) -> None:
        self.minutes, self.every, self.deadline = minutes, every, math.inf

    def before_fit(self, trainer: Trainer) -> None:
        self.deadline = time.monotonic() + 60 * self.minutes

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        over = time.monotonic() > self.deadline
        if trainer.dist.enabled:
            over = self.due(state) and dist.any_rank(over, trainer.device)
        state.last = state.last or over


class LogHook(Hook):
    """The progress bar, every step; at log steps the means of the logged losses since the last log step (read from
    the device here, once), the model's other loss values, the learning rates and the seconds per step, into the run
    log (rank 0) and :attr:`StepEnd.means`."""

    def __init__(self, every: int, progress: bool, name: str) -> None:
        self.every, self.progress, self.name = every, progress, name
        self.bar: tqdm | None = None
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.count, self.tic = 0, time.perf_counter()

    def before_fit(self, trainer: Trainer) -> None:
        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, desc=self.name, unit="it",
                        disable=not (self.progress and trainer.dist.is_main), dynamic_ncols=True)
        self._reset()

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        for k, v in state.logs.items():  # kept on the device until logged
            self.sums[k] = self.sums[k] + v if k in self.sums else v.float()
            self.counts[k] = self.counts.get(k, 0) + 1
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
        if not self.due(state):
            return
        means = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        means.update(trainer.model.loss_logs())
        means.update({f"lr_{g}": o.param_groups[0]["lr"] for g, o in trainer.optimizers.items()})
        means["sec_per_it"] = (time.perf_counter() - self.tic) / self.count
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in list(means.items())[:6]})
        if trainer.logger:
            trainer.logger.scalars(state.step, means)
        state.means = means
        self._reset()

    def after_fit(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class BadStepHook(Hook):
    """At log steps, reads the bad-step guard (:class:`~i2i.engine.guard.BadStepGuard`: it warns of the bad steps
    since the last read); after ``train.max_bad_steps`` in a row, checkpoints the last good state and stops."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        if self.due(state) and trainer.guard.read():
            raise self.stop(trainer)

    @staticmethod
    def stop(trainer: Trainer) -> StopTraining:
        """Checkpoint the last good state (no bad step changed the weights) and say what went wrong."""
        guard, step = trainer.guard, trainer.step
        later = f" up to step {guard.hit}, and no update since" if guard.hit != step else ""
        what = (f"training stopped at step {step}: non-finite {guard.first} for {guard.streak} steps in a row"
                f"{later} (train.max_bad_steps)")
        path = trainer.save()
        if not trainer.dist.is_main:
            return StopTraining(what)
        if path is None:
            saved = list_checkpoints(trainer.run_dir)
            where = f"; the newest good checkpoint is {saved[-1]}" if saved else ""
            return StopTraining(f"{what}; the model state is no longer finite{where}")
        return StopTraining(f"{what}; the last good state is saved in {path} (lower the learning rate with --set, "
                            "or check the data, then --resume)")


class SampleHook(Hook):
    """Every ``log.sample_every`` steps and at the last: a grid of the step's images (rank 0)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        if trainer.logger and self.due(state):
            batch = speed.to_device(state.batch, trainer.device)
            trainer.logger.samples(state.step, trainer.model.visuals(batch, state.out))


class EvalHook(Hook):
    """Every ``eval.every`` steps and at the last: scores the validation set (every process its share), with the EMA
    weights unless ``eval.ema: false``; rank 0 logs the scores and keeps ``best.pt``, the state of the best score
    of ``eval.best`` (never a non-finite one).  Unreadable validation data stops training with a checkpoint."""

    def __init__(self, cfg: EvalConfig, evaluator: Evaluator) -> None:
        self.cfg, self.every, self.evaluator = cfg, cfg.every, evaluator

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        if not self.due(state):
            return
        try:
            self.evaluate(trainer)
        except DataError as exc:
            path = trainer.save()
            raise StopTraining(f"training stopped at step {state.step}: evaluation: {one_line(exc)}"
                               + (f"; checkpoint {path} (fix the data, then --resume)" if path else "")) from None

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        html = trainer.run_dir / "eval" / f"step_{trainer.step:07d}" if self.cfg.html else None
        weights = trainer.ema.applied() if trainer.ema is not None and self.cfg.ema else contextlib.nullcontext()
        with weights:
            scores = self.evaluator.run(trainer.model, html)
        if not trainer.dist.is_main:  # the same scores on every process; rank 0 logs and saves
            return scores
        trainer.logger.scalars(trainer.step, scores, prefix="eval")
        key = self.cfg.best
        if key and key in scores:
            better = self.evaluator.is_better(key, scores[key], trainer.best)
            if better and finite_state(trainer.model, trainer.ema) is None:
                trainer.best = scores[key]
                save_checkpoint(trainer.state_dict(), checkpoint_dir(trainer.run_dir) / "best.pt")
        return scores


class CheckpointHook(Hook):
    """A step checkpoint every ``train.checkpoint_every`` steps, at the last step and at each epoch's end (once the
    epoch has ended, so that a resumed run starts the next one)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        if self.due(state) and not state.epoch_done:
            trainer.save()

    def after_epoch(self, trainer: Trainer, state: StepEnd) -> None:
        trainer.save()


class SignalHook(Hook):
    """SIGINT and SIGTERM (:class:`~i2i.signals.StopSignals`) stop training after the step during which one
    came, with a checkpoint; with several processes, which must agree, at the next log step."""

    def __init__(self, every: int) -> None:
        self.every = every

    def before_fit(self, trainer: Trainer) -> None:
        trainer.signals.__enter__()

    def after_fit(self, trainer: Trainer) -> None:
        trainer.signals.__exit__(None, None, None)

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        if not state.last and self.signalled(trainer, self.due(state)):  # (a run that just finished has finished)
            raise trainer.stop_on_signal()

    @staticmethod
    def signalled(trainer: Trainer, agree: bool) -> bool:
        """A signal was received (with several processes: by any, asked only when ``agree``, so that a step does
        not wait for the device)."""
        signals = trainer.signals
        number = int(signals.requested or 0)
        if trainer.dist.enabled:  # the signal of the process that got one, on every process
            number = dist.max_rank(number, trainer.device) if agree else 0
            if number and signals.requested is None:
                signals.requested = signal.Signals(number)
        return bool(number)

