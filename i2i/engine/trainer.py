"""The one training loop, for every translator.

The model says what an iteration computes (:mod:`i2i.models.base`): its
optimizer groups, its phases and their losses.  The trainer runs it: device and
mixed precision, one optimizer and lr schedule per group, frozen groups per
phase, phase intervals, gradient clipping, distributed gradient averaging, the
EMA of the inference networks; after each step its hooks (:mod:`i2i.engine.hooks`)
write logs, samples and resumable checkpoints, evaluate, and stop or roll back
training when it must.  It names no model, network or group.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import checkpoint_dir, load_weights, prune_checkpoints, save_checkpoint
from ..config import Config, to_dict
from ..configure import check_model_fit
from ..data import build_dataset, build_loader
from ..data.skipping import SkipUnreadable, one_line, report_skipped
from ..errors import CheckpointError, DataError
from ..losses import global_batch
from ..models import build_model
from ..nn.sync_bn import convert_sync_batchnorm
from ..runtime import autocast, check_amp, resolve_amp, select_device, set_numerics
from ..signals import StopSignals
from ..snapshot import Snapshot
from . import distributed as dist
from . import speed
from .divergence import DivergenceGuard, DivergenceHook
from .ema import EMA
from .guard import BadStepGuard, StopTraining, finite_grads, finite_state, not_finite
from .hooks import (BadStepHook, CheckpointHook, EvalHook, Hook, LogHook, RolledBack, SampleHook, SignalHook, StepEnd,
                    TimeBudget)
from .logger import RunLogger
from .optim import group_parameters, make_optimizer, make_scheduler, step_schedulers, step_unless
from .reducer import GradReducer
from .rng import rng_state, seed_everything, set_rng_state, step_generator
from .scalers import LossScalers
from .warmstart import init_from


def _set_requires_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def training_hooks(cfg: Config, trainer: Trainer) -> list[Hook]:
    """What a run of ``cfg`` does after each step (:mod:`i2i.engine.hooks`), in the order it is done."""
    every = cfg.log.every  # the hooks that read values from the device act at log steps
    hooks: list[Hook] = [TimeBudget(cfg.train.time_budget_min, every)] if cfg.train.time_budget_min else []
    hooks += [LogHook(every, cfg.log.progress, cfg.train.name or "train"), BadStepHook(every)]
    if cfg.train.divergence.watch:
        hooks.append(DivergenceHook(every))
    hooks.append(SampleHook(cfg.log.sample_every))
    if cfg.eval.every:  # every process scores its share of the validation set
        from .evaluate import Evaluator  # (the metrics are imported only for runs that evaluate)

        hooks.append(EvalHook(cfg.eval, Evaluator(cfg, trainer.device, trainer.dist.rank, trainer.dist.world_size)))
    return hooks + [CheckpointHook(cfg.train.checkpoint_every), SignalHook(every)]


class Trainer:
    def __init__(self, cfg: Config, run_dir: str | Path, resume: dict | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        device = select_device(cfg.train.device)
        self.dist = dist.init_distributed(device)
        self.device = dist.device_for(self.dist, device)
        self.amp = resolve_amp(self.device, cfg.train.amp)
        check_amp(self.device, self.amp)
        set_numerics(self.device, cfg.train.tf32, cfg.train.deterministic)  # TF32, deterministic kernels
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        seed_everything(cfg.train.seed + self.dist.rank)

        # an unreadable training item is skipped and listed; many in a row stop training (i2i.data.skipping)
        self.skip_list = self.run_dir / "skipped_images.txt"
        self.dataset = SkipUnreadable(build_dataset(cfg.data, train=True), self.skip_list)
        self.loader = build_loader(self.dataset, cfg.data, True, cfg.train.seed, self.dist.rank, self.dist.world_size,
                                   pin_memory=self.device.type == "cuda")
        self.sampler, self.loader_rng = self.loader.sampler, self.loader.generator
        self.steps_per_epoch = math.ceil(len(self.sampler) / cfg.data.batch_size)

        self.model = build_model(cfg).to(self.device)
        check_model_fit(cfg, self.model)
        if cfg.train.init_from and resume is None:  # fine-tuning (i2i.engine.warmstart)
            init_from(self.model, cfg.train.init_from, quiet=not self.dist.is_main)
        if cfg.train.sync_bn and self.dist.enabled:
            self.model = convert_sync_batchnorm(self.model)
        dist.broadcast_module(self.model)
        modules = self.model.optim_groups()
        if set(modules) != set(cfg.optim):
            raise ValueError(f"{cfg.model.name}: optim_groups() returns {sorted(modules)}, "
                             f"the config has {sorted(cfg.optim)}")
        t = cfg.train  # memory layout, torch.compile, cuDNN autotuning (i2i.engine.speed)
        self.compiled = speed.prepare(self.model, modules, self.device, t.channels_last, t.compile, t.compile_mode,
                                      t.cudnn_benchmark and not t.deterministic, t.cpu_malloc_cache)
        self.params = group_parameters(modules)
        self.reducer = GradReducer(self.params) if self.dist.enabled else None  # averages each phase's gradients
        self.optimizers = {g: make_optimizer(p, cfg.optim[g], self.device) for g, p in self.params.items()}
        self.schedulers = {g: make_scheduler(o, cfg.optim[g], cfg.train, self.steps_per_epoch)
                           for g, o in self.optimizers.items()}
        self.scalers = LossScalers(self.device, self.amp, [p.name for p in self.model.phases()])
        ema_cfg, group = cfg.train.ema, self.model.ema_group
        self.ema = EMA(self.model, modules[group], ema_cfg.decay, ema_cfg.start) if ema_cfg.decay and group else None
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best: float | None = None
        self.guard = BadStepGuard(cfg.train.max_bad_steps, self.device, quiet=not self.dist.is_main)
        self.divergence = DivergenceGuard(cfg.train.divergence)
        self.signals = StopSignals(quiet=not self.dist.is_main,
                                   until="the steps up to the next log step" if self.dist.enabled else "this step")
        self.shares: list[int] | None = None  # every process's size of the current batch (several processes)
        self.updates: int | torch.Tensor = 0  #: optimizer steps made by this process (on the device once counting)
        self.saved_step = -1  #: the step whose state is in its step checkpoint already (no second write)
        self.last_checkpoint: Path | None = None  #: the step checkpoint written last
        if resume is not None:
            self.load_state(resume)
        purge = self.step + 1 if resume is not None else None
        self.logger = RunLogger(self.run_dir, cfg.log.tensorboard, purge) if self.dist.is_main else None
        self.hooks = training_hooks(cfg, self)

    # ------------------------------------------------------------------ one iteration
    def train_step(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One iteration; the host never waits for the device in it (after the first: see the reducer).  A phase
        whose loss or gradients are not finite makes no update, decided on the device (:mod:`i2i.engine.guard`)."""
        model, amp, guard = self.model, self.amp, self.guard
        model.train()
        if self.dist.enabled:  # rank 0's batch-norm statistics (none under train.sync_bn: the same everywhere)
            dist.broadcast_statistics(model)
        batch = speed.to_device(batch, self.device, self.cfg.train.channels_last)
        model.start_step(step_generator(self.cfg.train.seed, self.step, self.device))  # the same on every process
        buffers = Snapshot(model.buffers())  # batch-norm statistics... to put back after a bad step
        guard.start_step()
        due = [phase for phase in model.phases() if self.step % phase.every == 0]
        with global_batch.shares(self.shares):  # every process's batch size: random draws for the global batch
            with torch.set_grad_enabled(any(p.grad_through_outputs for p in due)), autocast(self.device, amp):
                out = model.generate(batch)
            logs: dict[str, torch.Tensor] = {}
            for phase in due:
                frozen = [p for g in phase.frozen for p in self.params[g]]
                _set_requires_grad(frozen, False)
                with autocast(self.device, amp):
                    loss, phase_logs = model.loss(phase.name, batch, out)
                opt, params = self.optimizers[phase.group], self.params[phase.group]
                scaler = self.scalers[phase.name]
                bad_loss, mismatch = not_finite(loss, self.device), None
                if self.reducer is not None:
                    self.reducer.prepare(phase.group, phase.name)  # zeroed gradient buckets (in place of zero_grad)
                else:
                    opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if self.reducer is not None:
                    bad_loss, mismatch = self.reducer.finish(bad_loss)  # on any process (with the gradients)
                graded = any(p.grad is not None for p in params)  # (a phase may leave its whole group without one)
                if graded:
                    scaler.unscale_(opt)  # fp16: true gradients, checked below like any other
                grads_ok = finite_grads(params, self.device)
                bad = guard.phase(phase.name, phase.group, loss, phase_logs, bad_loss, grads_ok, mismatch,
                                  scaler if graded else None)
                clip = self.cfg.optim[phase.group].grad_clip
                if graded:
                    if clip:
                        torch.nn.utils.clip_grad_norm_(params, clip)
                    step_unless(opt, bad)  # no update from a non-finite loss or gradient, an fp16 overflow included
                    self.updates = self.updates + (~bad).long()  # on the device; read when the run ends
                model.after_step(phase.name, ~bad)
                if graded:
                    scaler.update()  # once per iteration for this phase's scaler (i2i.engine.scalers.LossScalers)
                _set_requires_grad(frozen, True)
                logs.update(phase_logs)
        buffers.restore(guard.end_step(self.step + 1))  # the batch-norm statistics of a bad step are put back
        step_schedulers(self.schedulers, self.cfg.optim, "iter")
        if self.ema is not None:
            self.ema.update(self.step + 1)
        return logs, out

    @property
    def bad_losses(self) -> list[str]:
        """What went non-finite in the last step's phases (reads the device: for tests and messages)."""
        return self.guard.last_reasons()

    # ------------------------------------------------------------------ the loop
    @property
    def total_steps(self) -> int:
        t = self.cfg.train
        by_epochs = (t.epochs + t.epochs_decay) * self.steps_per_epoch
        return min(by_epochs, t.max_steps) if t.max_steps and by_epochs else (t.max_steps or by_epochs)

    def fit(self) -> Path | None:
        """Train until the last epoch or ``max_steps``: each step, then the hooks; return the last checkpoint."""
        start, total = self.step, self.total_steps
        try:
            for hook in self.hooks:
                hook.before_fit(self)
            finished = False
            while not finished and self.step < total:
                if self.signals.requested is not None and not self.dist.enabled:  # a pass without a step
                    raise self.stop_on_signal()
                self.sampler.set_epoch(self.epoch, self.batch_in_epoch * self.cfg.data.batch_size)
                self.loader_rng.manual_seed(self.cfg.train.seed * 100003 + self.epoch * 1009 + self.dist.rank)
                try:
                    finished = self._train_pass(total)
                except RolledBack:  # back to an earlier step: the epoch's batches start again
                    pass
        finally:
            for hook in self.hooks:
                hook.after_fit(self)
            if self.logger:
                self.logger.close()
            if self.dist.is_main:
                report_skipped(self.skip_list)
            dist.barrier()
        if self.step > start and not self.updates:
            last = self.last_checkpoint
            raise StopTraining(f"no update was made: all {self.step - start} step(s) of this run were skipped "
                               f"(non-finite {self.guard.first}); the weights are as they started"
                               + (f", checkpoint {last}" if last else ""))
        return self.last_checkpoint

    def _train_pass(self, total: int) -> bool:
        """The steps of the rest of this epoch (fewer if the run ends first); True when the run has ended."""
        stepped = False
        for batch in self._batches():
            stepped = True
            try:
                logs, out = self.train_step(batch)
            except Exception as exc:
                oom = speed.out_of_memory(exc)
                if oom is None:
                    raise
                raise StopTraining(speed.out_of_memory_line(oom, self.step + 1, batch, self.cfg.data.batch_size,
                                                            self.amp)) from None
            self.step += 1
            self.batch_in_epoch += 1
            state = StepEnd(self.step, batch, logs, out, last=self.step >= total,
                            epoch_done=self.batch_in_epoch >= self.steps_per_epoch)
            del logs, out
            for hook in self.hooks:
                hook.after_step(self, state)
            if state.epoch_done:
                self._end_epoch()
                for hook in self.hooks:
                    hook.after_epoch(self, state)
            if state.last or state.epoch_done:
                return state.last
            del state  # (its outputs are not kept alive during the next step)
        if not stepped:  # nothing left of this epoch: the next one, never the same empty pass again
            if self.batch_in_epoch == 0:
                raise StopTraining(f"training stopped at step {self.step}: the training data gave no batch "
                                   f"in epoch {self.epoch + 1}")
            self._end_epoch()
        return False

    def _batches(self):
        """The loader's batches (:func:`i2i.engine.distributed.agreed_batches`); a loader that fails (broken data,
        workers ended by a signal) stops training with a checkpoint of the last completed step."""
        for batch, self.shares in dist.agreed_batches(self.loader, self.dist, self._stop_on_data_failure):
            yield batch

    def _stop_on_data_failure(self, failure: Exception | None) -> None:
        """Stop every process: rank 0 checkpoints; a data error is one line (the first failing rank's)."""
        lines = dist.all_gather_object(one_line(failure) if isinstance(failure, DataError) else
                                       (f"{type(failure).__name__} in the data loader" if failure else None))
        if self.signals.requested is not None and not (self.dist.enabled and isinstance(failure, DataError)):
            raise self.stop_on_signal() from None  # (a signal may have ended the loader's workers)
        path = self.save()
        if failure is not None and not isinstance(failure, DataError):
            raise failure
        first = next((r, line) for r, line in enumerate(lines) if line is not None)
        where = f"process {first[0]}: " if self.dist.enabled else ""
        raise StopTraining(f"training stopped at step {self.step}: {where}{first[1]}"
                           + (f"; checkpoint {path} (fix the data, then --resume)" if path else "")) from None

    def stop_on_signal(self) -> StopTraining:
        """Checkpoint the state after the last completed step; exit code 128 + the signal number."""
        path = self.save()
        name = self.signals.requested.name if self.signals.requested is not None else "a signal"
        where = f"; checkpoint {path}; continue with: i2i-train --resume {self.run_dir}" if path else ""
        exc = StopTraining(f"interrupted by {name} at step {self.step}{where}")
        exc.exit_code = self.signals.exit_code
        return exc

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        step_schedulers(self.schedulers, self.cfg.optim, "epoch")

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        state = {
            "config": to_dict(self.cfg),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scalers.state_dict(),
            "loss_state": self.model.loss_state(),
            "rng": rng_state(self.device),
            "divergence": self.divergence.state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def save(self) -> Path | None:
        """Write a step checkpoint (rank 0), never one holding NaN or Inf."""
        if not self.dist.is_main:
            return None
        path = checkpoint_dir(self.run_dir) / f"step_{self.step:07d}.pt"
        if self.saved_step == self.step and path.is_file():  # this very state is on disk already
            self.last_checkpoint = path
            return path
        bad = finite_state(self.model, self.ema)
        if bad is not None:
            print(f"warning: step {self.step}: no checkpoint written: {bad} holds non-finite values", file=sys.stderr)
            return None
        save_checkpoint(self.state_dict(), path)
        self.saved_step, self.last_checkpoint = self.step, path
        prune_checkpoints(self.run_dir, self.cfg.train.keep_last)
        return path

    def load_state(self, state: dict) -> None:
        """Continue from a checkpoint; ``CheckpointError`` (one line) if it does not fit this config's model."""
        name = self.cfg.model.name
        was = (state.get("config") or {}).get("model", {})
        was = was if isinstance(was, str) else (was.get("name", name) if isinstance(was, dict) else name)
        what = f"the {name} model of the config" + (f" (the checkpoint holds a {was} model)" if was != name else "")
        load_weights(self.model, state["model"], what)
        try:
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            for k, s in self.schedulers.items():
                s.load_state_dict(state["schedulers"][k])
            self.scalers.load_state_dict(state["scaler"])
            self.model.load_loss_state(state.get("loss_state", {}))
            if self.ema is not None:
                if "ema" in state:
                    self.ema.load_state_dict(state["ema"])
                else:  # EMA switched on at resume: start from the current weights
                    self.ema.update(0)
            self.step, self.epoch = int(state["step"]), int(state["epoch"])
            self.batch_in_epoch = int(state["batch_in_epoch"])
            self.best = state.get("best")
            self.divergence.load_state_dict(state.get("divergence") or {})
            if self.dist.rank == 0:
                set_rng_state(state["rng"], self.device)
        except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(f"its training state does not fit {what}: {type(exc).__name__} {detail}") from None
        # a state saved after an epoch's last step but before the epoch ended (best.pt is written by the
        # evaluation of that step), or one of a larger data set: the epoch has ended
        if self.batch_in_epoch >= self.steps_per_epoch:
            self._end_epoch()
