"""The one training loop, for every translator.

The model says what an iteration computes (:mod:`i2i.models.base`): its
optimizer groups, its phases and their losses.  The trainer runs it: device and
mixed precision, one optimizer and lr schedule per group, frozen groups per
phase, phase intervals, gradient clipping, distributed gradient averaging, the
EMA of the inference networks, progress bar, logs, samples, evaluation and
resumable checkpoints.  It names no model, network or group.
"""
from __future__ import annotations

import contextlib
import math
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..config import Config, to_dict
from ..configure import check_model_fit
from ..data import build_dataset, build_loader
from ..data.skipping import SkipUnreadable, one_line, skipped
from ..errors import CheckpointError, DataError
from ..models import build_model
from ..nn.sync_bn import convert_sync_batchnorm
from . import distributed as dist
from . import speed
from .checkpoint import (checkpoint_dir, list_checkpoints, load_weights, prune_checkpoints, read_checkpoint,
                         save_checkpoint)
from .divergence import DivergenceGuard
from .ema import EMA
from ..losses import global_batch
from .guard import BadStepGuard, BufferSnapshot, StopTraining, finite_grads, finite_state, not_finite
from .logger import RunLogger
from .optim import group_parameters, make_optimizer, make_scheduler, step_unless
from .reducer import GradReducer
from .resume import cut_metrics
from .runtime import (LossScalers, autocast, check_amp, resolve_amp, rng_state, seed_everything, select_device,
                      set_numerics,
                      set_rng_state, step_generator)
from .signals import StopSignals


def _to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    return speed.to_device(batch, device, channels_last)


def _batch_size(batch: dict[str, Any]) -> int:
    return next((len(v) for v in batch.values() if torch.is_tensor(v)), 0)


def _set_requires_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


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
        self._saved_step = -1
        if resume is not None:
            self._load_state(resume)
        purge = self.step + 1 if resume is not None else None
        self.logger = RunLogger(self.run_dir, cfg.log.tensorboard, purge) if self.dist.is_main else None
        self.evaluator = None
        if cfg.eval.every:  # every process scores its share of the validation set
            from .evaluate import Evaluator

            self.evaluator = Evaluator(cfg, self.device, self.dist.rank, self.dist.world_size)

    # ------------------------------------------------------------------ one iteration
    def train_step(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One iteration; the host never waits for the device in it (after the first: see the reducer).  A phase
        whose loss or gradients are not finite makes no update, decided on the device (:mod:`i2i.engine.guard`)."""
        model, amp, guard = self.model, self.amp, self.guard
        model.train()
        if self.dist.enabled:  # rank 0's batch-norm statistics (none under train.sync_bn: the same everywhere)
            dist.broadcast_statistics(model)
        batch = _to_device(batch, self.device, self.cfg.train.channels_last)
        model.start_step(step_generator(self.cfg.train.seed, self.step, self.device))  # the same on every process
        buffers = BufferSnapshot(model)
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
                    scaler.update()  # once per iteration for this phase's scaler (i2i.engine.runtime.LossScalers)
                _set_requires_grad(frozen, True)
                logs.update(phase_logs)
        buffers.restore(guard.end_step(self.step + 1))  # the batch-norm statistics of a bad step are put back
        self._step_schedulers("iter")
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
        """Train until the last epoch or ``max_steps``; return the last checkpoint."""
        cfg, total, start = self.cfg, self.total_steps, self.step
        bar = tqdm(total=total, initial=self.step, desc=cfg.train.name or "train", unit="it",
                   disable=not (cfg.log.progress and self.dist.is_main), dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        count, tic, last = 0, time.perf_counter(), None
        finished = False
        deadline = time.monotonic() + 60 * cfg.train.time_budget_min if cfg.train.time_budget_min else math.inf
        try:
            self.signals.__enter__()
            while not finished and self.step < total:
                if self.signals.requested is not None and not self.dist.enabled:  # a pass without a step
                    raise self._stop_on_signal()
                self.sampler.set_epoch(self.epoch, self.batch_in_epoch * cfg.data.batch_size)
                self.loader_rng.manual_seed(cfg.train.seed * 100003 + self.epoch * 1009 + self.dist.rank)
                stepped = False
                for batch in self._batches():
                    stepped = True
                    try:
                        logs, out = self.train_step(batch)
                    except Exception as exc:
                        oom = speed.out_of_memory(exc)
                        if oom is None:
                            raise
                        raise self._out_of_memory(batch, oom) from None
                    self.step += 1
                    self.batch_in_epoch += 1
                    epoch_done = self.batch_in_epoch >= self.steps_per_epoch
                    for k, v in logs.items():  # kept on the device until logged
                        sums[k] = sums[k] + v if k in sums else v.float()
                        counts[k] = counts.get(k, 0) + 1
                    count += 1
                    bar.update(1)
                    finished = self.step >= total
                    log_step = self.step % cfg.log.every == 0 or finished
                    if deadline != math.inf:  # several processes agree at log steps (a step does not wait)
                        over = time.monotonic() > deadline
                        if self.dist.enabled:
                            over = log_step and dist.any_rank(over, self.device)
                        finished = finished or over
                        log_step = log_step or finished
                    bad_steps = False
                    if log_step:
                        bad_steps = self.guard.read()  # warns of bad steps since the last log step
                        means = {k: float(v) / counts[k] for k, v in sums.items()}
                        means.update(self.model.loss_logs())
                        means.update({f"lr_{g}": o.param_groups[0]["lr"] for g, o in self.optimizers.items()})
                        means["sec_per_it"] = (time.perf_counter() - tic) / count
                        bar.set_postfix({k: f"{v:.3g}" for k, v in list(means.items())[:6]})
                        if self.logger:
                            self.logger.scalars(self.step, means)
                        sums, counts, count, tic = {}, {}, 0, time.perf_counter()
                        diverged = self.divergence.observe(self.step, means)
                        if self.dist.enabled and self.divergence.enabled:
                            diverged = dist.any_rank(diverged, self.device)
                        if diverged and not bad_steps:
                            del out
                            self._roll_back()  # back to an earlier step: the epoch's batches start again
                            break
                    if self.logger and (self.step % cfg.log.sample_every == 0 or finished):
                        self.logger.samples(self.step, self.model.visuals(_to_device(batch, self.device), out))
                    eval_error = None
                    if self.evaluator and (self.step % cfg.eval.every == 0 or finished):
                        try:
                            self.evaluate()
                        except DataError as exc:  # stop, but with this step checkpointed (below)
                            eval_error = exc
                    if epoch_done:
                        self._end_epoch()
                    if self.step % cfg.train.checkpoint_every == 0 or epoch_done or finished:
                        last = self.save() or last
                    del out  # not alive during the next step (it would keep this step's tensors)
                    if bad_steps:
                        raise self._stop_on_bad_steps()
                    if eval_error is not None:
                        path = self.save()
                        raise StopTraining(f"training stopped at step {self.step}: evaluation: {one_line(eval_error)}"
                                           + (f"; checkpoint {path} (fix the data, then --resume)" if path else ""))
                    if not finished and self._signalled(log_step):  # (a run that just finished has finished)
                        raise self._stop_on_signal()
                    if finished or epoch_done:
                        break
                if not stepped:  # nothing left of this epoch: the next one, never the same empty pass again
                    if self.batch_in_epoch == 0:
                        raise StopTraining(f"training stopped at step {self.step}: the training data gave no batch "
                                           f"in epoch {self.epoch + 1}")
                    self._end_epoch()
        finally:
            self.signals.__exit__(None, None, None)
            bar.close()
            if self.logger:
                self.logger.close()
            self._report_skipped()
            dist.barrier()
        if self.step > start and not self.updates:
            raise StopTraining(f"no update was made: all {self.step - start} step(s) of this run were skipped "
                               f"(non-finite {self.guard.first}); the weights are as they started"
                               + (f", checkpoint {last}" if last else ""))
        return last

    def _signalled(self, log_step: bool) -> bool:
        """A signal was received (with several processes: by any, asked at log steps only, so that a step does
        not wait for the device)."""
        number = int(self.signals.requested or 0)
        if self.dist.enabled:  # the signal of the process that got one, on every process
            number = dist.max_rank(number, self.device) if log_step else 0
            if number and self.signals.requested is None:
                self.signals.requested = signal.Signals(number)
        return bool(number)

    def _batches(self):
        """The loader's batches; a loader that fails (broken data, workers ended by a signal) stops
        training with a checkpoint of the last completed step.  With several processes they agree on
        each batch, so that a failure on one stops all of them (none waits for it in a collective): a
        process without a batch cannot take part in the step's collectives.  The agreement goes through
        host memory (:func:`i2i.engine.distributed.host_gather`), so it never waits for the device, and
        brings every process's batch size along (random draws for the global batch need it)."""
        it = iter(self.loader)
        while True:
            failure = None
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as exc:
                if self.signals.requested is not None and not self.dist.enabled:
                    raise self._stop_on_signal() from None
                failure = exc
            if self.dist.enabled:
                size = 0 if failure is not None else _batch_size(batch)
                agreed = dist.host_gather([int(failure is not None), size], self.dist)
                stop, self.shares = any(f for f, _ in agreed), [n for _, n in agreed]
            else:
                stop = failure is not None
            if stop:
                self._stop_on_data_failure(failure)
            yield batch

    def _stop_on_data_failure(self, failure: Exception | None) -> None:
        """Stop every process: rank 0 checkpoints; a data error is one line (the first failing rank's)."""
        lines = dist.all_gather_object(one_line(failure) if isinstance(failure, DataError) else
                                       (f"{type(failure).__name__} in the data loader" if failure else None))
        if self.signals.requested is not None and not isinstance(failure, DataError):  # workers ended by a signal
            raise self._stop_on_signal() from None
        path = self.save()
        if failure is not None and not isinstance(failure, DataError):
            raise failure
        first = next((r, line) for r, line in enumerate(lines) if line is not None)
        where = f"process {first[0]}: " if self.dist.enabled else ""
        raise StopTraining(f"training stopped at step {self.step}: {where}{first[1]}"
                           + (f"; checkpoint {path} (fix the data, then --resume)" if path else "")) from None

    def _out_of_memory(self, batch: dict[str, Any], exc: BaseException) -> StopTraining:
        """One line naming what sets the step's memory: the batch size, the image size, mixed precision."""
        shape = next((tuple(v.shape) for v in batch.values() if torch.is_tensor(v) and v.dim() == 4), None)
        size = f", {shape[-2]} x {shape[-1]} px images" if shape else ""
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return StopTraining(f"out of memory in training step {self.step + 1} (data.batch_size "
                            f"{self.cfg.data.batch_size}{size}, train.amp {self.amp}): {first}; lower "
                            "data.batch_size or data.crop_size, or use train.amp bf16")

    def _stop_on_signal(self) -> StopTraining:
        """Checkpoint the state after the last completed step; exit code 128 + the signal number."""
        path = self.save()
        name = self.signals.requested.name if self.signals.requested is not None else "a signal"
        where = f"; checkpoint {path}; continue with: i2i-train --resume {self.run_dir}" if path else ""
        exc = StopTraining(f"interrupted by {name} at step {self.step}{where}")
        exc.exit_code = self.signals.exit_code
        return exc

    def _report_skipped(self) -> None:
        if self.dist.is_main and self.skip_list.is_file():
            n = len(skipped(self.skip_list))
            print(f"note: {n} training item(s) could not be loaded and were skipped; listed in {self.skip_list}",
                  file=sys.stderr)

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        self._step_schedulers("epoch")

    def _step_schedulers(self, unit: str) -> None:
        for group, sched in self.schedulers.items():
            if self.cfg.optim[group].unit == unit:
                with warnings.catch_warnings():  # a group that no phase steps (an idle network) is fine
                    warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                    sched.step()

    def inference_weights(self):
        """Context in which the model holds the weights evaluation uses (EMA unless ``eval.ema: false``)."""
        if self.ema is not None and self.cfg.eval.ema:
            return self.ema.applied()
        return contextlib.nullcontext()

    def evaluate(self) -> dict[str, float]:
        html = self.run_dir / "eval" / f"step_{self.step:07d}" if self.cfg.eval.html else None
        with self.inference_weights():
            scores = self.evaluator.run(self.model, html)
        if not self.dist.is_main:  # the same scores on every process; rank 0 logs and saves
            return scores
        self.logger.scalars(self.step, scores, prefix="eval")
        key = self.cfg.eval.best
        if key and key in scores:
            better = self.evaluator.is_better(key, scores[key], self.best)
            if better and finite_state(self.model, self.ema) is None:
                self.best = scores[key]
                save_checkpoint(self.state_dict(), self.run_dir / "checkpoints" / "best.pt")
        return scores

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
        if self._saved_step == self.step and path.is_file():  # this very state is on disk already
            return path
        bad = finite_state(self.model, self.ema)
        if bad is not None:
            print(f"warning: step {self.step}: no checkpoint written: {bad} holds non-finite values", file=sys.stderr)
            return None
        save_checkpoint(self.state_dict(), path)
        self._saved_step = self.step
        prune_checkpoints(self.run_dir, self.cfg.train.keep_last)
        return path

    def _stop_on_bad_steps(self) -> StopTraining:
        """Checkpoint the last good state (no bad step changed the weights) and say what went wrong."""
        guard = self.guard
        later = f" up to step {guard.hit}, and no update since" if guard.hit != self.step else ""
        what = (f"training stopped at step {self.step}: non-finite {guard.first} for {guard.streak} steps in a row"
                f"{later} (train.max_bad_steps)")
        path = self.save()
        if not self.dist.is_main:
            return StopTraining(what)
        if path is None:
            saved = list_checkpoints(self.run_dir)
            where = f"; the newest good checkpoint is {saved[-1]}" if saved else ""
            return StopTraining(f"{what}; the model state is no longer finite{where}")
        return StopTraining(f"{what}; the last good state is saved in {path} (lower the learning rate with --set, "
                            "or check the data, then --resume)")

    def _roll_back(self) -> None:
        """The watched losses diverged (:mod:`i2i.engine.divergence`): continue from the newest checkpoint written
        while they were healthy with lower learning rates, or stop with one line."""
        guard, cfg = self.divergence, self.cfg.train.divergence
        what = f"training diverged at step {self.step}: {guard.describe()} for {cfg.patience} log steps"
        target = guard.rollback_target(self.run_dir) if self.dist.is_main else None
        why = ("a rollback is not done with several processes" if self.dist.enabled
               else "no checkpoint of a healthy step is left to roll back to" if target is None
               else f"after {guard.rollbacks} rollback(s) (train.divergence.max_rollbacks)"
               if guard.rollbacks >= cfg.max_rollbacks else None)
        if why is not None:
            best = checkpoint_dir(self.run_dir) / "best.pt"
            where = f"; the best checkpoint is {best}" if best.is_file() else ""
            raise StopTraining(f"{what}; stopped: {why}{where} (lower the learning rate with --set, then --resume)")
        keep = self.best, guard.rollbacks  # best.pt stays the best of the whole run; rollbacks keep counting
        state = read_checkpoint(target, self.device)
        self._load_state(state)
        self.best, guard.rollbacks = keep
        # the checkpoint's rates are those of its own number of rollbacks: scale them to this one's
        scale = cfg.lr_factor ** (guard.rollbacks + 1 - int((state.get("divergence") or {}).get("rollbacks", 0)))
        for group, opt in self.optimizers.items():
            sched = self.schedulers[group]
            sched.base_lrs = [lr * scale for lr in sched.base_lrs]
            for pg in opt.param_groups:
                pg["lr"] *= scale
                if "initial_lr" in pg:
                    pg["initial_lr"] *= scale
        guard.rolled_back()
        print(f"warning: {what}; rolled back to {target.name} with the learning rates x {cfg.lr_factor} "
              f"(rollback {guard.rollbacks} of {cfg.max_rollbacks})", file=sys.stderr)
        if self.logger:  # metrics.jsonl and TensorBoard hold each step once, as the run that goes on
            self.logger.close()
            cut_metrics(self.logger.metrics_path, self.step)
            self.logger = RunLogger(self.run_dir, self.cfg.log.tensorboard, self.step + 1)
        self._saved_step = self.step

    def _load_state(self, state: dict) -> None:
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
