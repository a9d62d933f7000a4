"""Finite divergence: a watched loss far above its running level for many log steps.

A training can go bad without going non-finite: a discriminator wins, or a saturating
layer locks a generator into a state it cannot leave; the loss jumps and stays up, and
the run would end with exit 0 and a checkpoint that does nothing useful.  At every log
step the guard compares each loss named in ``train.divergence.watch`` (its mean over the
log interval) with its running level, an exponential moving average of the earlier
healthy intervals.  Above ``factor`` times that level for ``patience`` log steps in a
row, the run has diverged: the trainer rolls back to the newest checkpoint written no
later than the last healthy log step, with every learning rate multiplied by
``lr_factor``; after ``max_rollbacks`` rollbacks (or with no such checkpoint, or with
several processes) it stops with one line instead.

The decision is made on the values that are logged anyway, so it adds no wait on the device
(:class:`DivergenceHook`, after the logs).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..checkpoint import checkpoint_dir, list_checkpoints, read_checkpoint, step_of
from ..config import DivergenceConfig
from ..errors import ConfigError
from . import distributed as dist
from .guard import StopTraining
from .hooks import Hook, RolledBack, StepEnd
from .logger import RunLogger
from .resume import cut_metrics

if TYPE_CHECKING:
    from .trainer import Trainer


class DivergenceGuard:
    """Watches logged loss means; :meth:`observe` says when a run has diverged."""

    def __init__(self, cfg: DivergenceConfig) -> None:
        self.cfg = cfg
        self.level: dict[str, float] = {}  # running level of each watched loss over healthy intervals
        self.seen = 0  # healthy log steps seen since the start or the last rollback
        self.streak = 0  # log steps in a row above the threshold
        self.last_healthy = 0  # the newest log step whose watched losses were at their level
        self.rollbacks = 0
        self.high: dict[str, tuple[float, float]] = {}  # loss -> (value, level) at the newest high log step

    @property
    def enabled(self) -> bool:
        return bool(self.cfg.watch)

    def observe(self, step: int, means: dict[str, float]) -> bool:
        """Record one log step's means; True when the watched losses have been high for ``patience`` log steps."""
        if not self.enabled:
            return False
        missing = [k for k in self.cfg.watch if k not in means]
        if missing:
            raise ConfigError(f"train.divergence.watch: {', '.join(map(repr, missing))} is not a loss this model "
                              f"logs (it logs: {', '.join(sorted(means))})")
        values = {k: float(means[k]) for k in self.cfg.watch}
        if not all(math.isfinite(v) for v in values.values()):  # non-finite steps are the bad-step guard's
            return False
        warm = self.seen >= self.cfg.warmup
        self.high = {k: (v, self.level[k]) for k, v in values.items()
                     if warm and v > self.cfg.factor * self.level[k]}
        if self.high:
            self.streak += 1
            return self.streak >= self.cfg.patience
        self.streak = 0
        self.last_healthy = step
        self.seen += 1
        a = self.cfg.smoothing
        for k, v in values.items():
            self.level[k] = v if k not in self.level else (1 - a) * self.level[k] + a * v
        return False

    def describe(self) -> str:
        """'G_L1 0.452 against its level 0.118' for the losses that are high."""
        return ", ".join(f"{k} {v:.4g} against its level {lvl:.4g}" for k, (v, lvl) in self.high.items())

    def rollback_target(self, run_dir: Path) -> Path | None:
        """The newest step checkpoint written no later than the last healthy log step."""
        good = [p for p in list_checkpoints(run_dir) if step_of(p) <= self.last_healthy]
        return good[-1] if good else None

    def rolled_back(self) -> None:
        """After a rollback: a fresh streak; the level is kept (the loss should come back to it)."""
        self.rollbacks += 1
        self.streak = 0
        self.high = {}

    def state_dict(self) -> dict:
        return {"rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict) -> None:
        self.rollbacks = int(state.get("rollbacks", 0))


class DivergenceHook(Hook):
    """At log steps, shows the logged means to the trainer's :class:`DivergenceGuard` (with several processes,
    which must agree, any process's verdict counts); when it says the run diverged, rolls back or stops."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: Trainer, state: StepEnd) -> None:
        if not self.due(state):
            return
        guard = trainer.divergence
        diverged = guard.observe(state.step, state.means)
        if trainer.dist.enabled and guard.enabled:
            diverged = dist.any_rank(diverged, trainer.device)
        if diverged:
            state.out = None  # (the step's outputs are not kept while the checkpoint loads)
            self.roll_back(trainer)
            raise RolledBack

    @staticmethod
    def roll_back(trainer: Trainer) -> None:
        """Continue from the newest checkpoint written while the watched losses were healthy with lower learning
        rates, or stop with one line."""
        guard, cfg = trainer.divergence, trainer.cfg.train.divergence
        what = f"training diverged at step {trainer.step}: {guard.describe()} for {cfg.patience} log steps"
        target = guard.rollback_target(trainer.run_dir) if trainer.dist.is_main else None
        why = ("a rollback is not done with several processes" if trainer.dist.enabled
               else "no checkpoint of a healthy step is left to roll back to" if target is None
               else f"after {guard.rollbacks} rollback(s) (train.divergence.max_rollbacks)"
               if guard.rollbacks >= cfg.max_rollbacks else None)
        if why is not None:
            best = checkpoint_dir(trainer.run_dir) / "best.pt"
            where = f"; the best checkpoint is {best}" if best.is_file() else ""
            raise StopTraining(f"{what}; stopped: {why}{where} (lower the learning rate with --set, then --resume)")
        keep = trainer.best, guard.rollbacks  # best.pt stays the best of the whole run; rollbacks keep counting
        state = read_checkpoint(target, trainer.device)
        trainer.load_state(state)
        trainer.best, guard.rollbacks = keep
        # the checkpoint's rates are those of its own number of rollbacks: scale them to this one's
        scale = cfg.lr_factor ** (guard.rollbacks + 1 - int((state.get("divergence") or {}).get("rollbacks", 0)))
        for group, opt in trainer.optimizers.items():
            sched = trainer.schedulers[group]
            sched.base_lrs = [lr * scale for lr in sched.base_lrs]
            for pg in opt.param_groups:
                pg["lr"] *= scale
                if "initial_lr" in pg:
                    pg["initial_lr"] *= scale
        guard.rolled_back()
        print(f"warning: {what}; rolled back to {target.name} with the learning rates x {cfg.lr_factor} "
              f"(rollback {guard.rollbacks} of {cfg.max_rollbacks})", file=sys.stderr)
        if trainer.logger:  # metrics.jsonl and TensorBoard hold each step once, as the run that goes on
            trainer.logger.close()
            cut_metrics(trainer.logger.metrics_path, trainer.step)
            trainer.logger = RunLogger(trainer.run_dir, trainer.cfg.log.tensorboard, trainer.step + 1)
        trainer.saved_step = trainer.step
