"""Checkpoint files: atomic writes, safe loads, keep-last-N rotation.

A checkpoint is one ``.pt`` file holding plain tensors and containers only,
so it loads with ``torch.load(..., weights_only=True)``.  Its keys:
``format``, ``config`` (the resolved config as a dict), ``step``, ``epoch``,
``batch_in_epoch``, ``model`` (the translator's state dict, image pools
included), ``optimizers`` and ``schedulers`` (by optimizer group), ``scaler``,
``loss_state``, ``rng`` and, with ``train.ema``, ``ema``.
"""
from __future__ import annotations

import errno
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .errors import CheckpointError
from .utils import atomic_path

FORMAT = 2  #: 2: the translator contract v2 config (1: i2i 0.1, upgraded on load)
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
#: the type of each field a checkpoint may hold (a file that loads but holds another is damaged or not one)
_FIELDS = {"step": int, "epoch": int, "batch_in_epoch": int, "ema": dict, "optimizers": dict, "schedulers": dict,
           "scaler": dict, "loss_state": dict, "rng": dict}


#: torch's words for a write its file writer could not finish (the errno is not passed on)
_WRITE_FAILED = ("unexpected pos", "file write failed", "failed writing")
_LOW_SPACE = 256 * 2**20  #: less free space than this after a failed write: the disk is full


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically: a write that fails (a full disk) leaves no part of it and every earlier
    checkpoint as it was, and is one line (:class:`CheckpointError`)."""
    path = Path(path)
    try:
        with atomic_path(path, sync=True) as tmp:
            torch.save({"format": FORMAT, "i2i_version": __version__, **state}, tmp)
    except (OSError, RuntimeError) as exc:
        why = _write_failure(exc, path.parent)
        if why is None:
            raise
        raise CheckpointError(f"cannot write checkpoint {path}: {why}; the earlier checkpoints are kept") from None
    return path


def _write_failure(exc: BaseException, folder: Path) -> str | None:
    """Why a checkpoint could not be written, in words; None for an error that is no failed write."""
    if isinstance(exc, RuntimeError) and not any(w in str(exc) for w in _WRITE_FAILED):
        return None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    space = f" ({free / 2**20:.0f} MiB free)" if free is not None else ""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
            isinstance(exc, RuntimeError) and free is not None and free < _LOW_SPACE):
        return f"the disk is full{space}: free some space, then --resume"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}{space}"
    return f"the file system refused the write{space}: {str(exc).strip().splitlines()[0][:160]}"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file, or the newest readable one of a run folder (saying so if it skips one)."""
    return open_checkpoint(path, map_location)[1]


def open_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    prefer_best: bool = False) -> tuple[Path, dict[str, Any]]:
    """``(file, state)`` of a checkpoint file, or of the newest readable one of a run folder
    (with ``prefer_best``, its ``best.pt`` kept by ``eval.best`` first)."""
    path = Path(path)
    if path.is_dir():
        best = checkpoint_dir(path) / "best.pt"
        if prefer_best and best.is_file():
            try:
                return best, read_checkpoint(best, map_location)
            except CheckpointError as exc:
                print(f"warning: {exc}; using the newest step checkpoint", file=sys.stderr)
        found, state, skipped = load_newest(path, map_location)
        warn_skipped(skipped, found)
        return found, state
    path = resolve_checkpoint(path)
    return path, read_checkpoint(path, map_location)


def describe(path: Path, state: dict[str, Any]) -> str:
    """``RUN/checkpoints/best.pt (step 6000, best psnr 24.31 on the validation set)``."""
    key = ((state.get("config") or {}).get("eval") or {}).get("best", "")
    score = state.get("best")
    by = f", best {key} {score:.4g} on the validation set" if path.name == "best.pt" and key and \
        isinstance(score, float) else ""
    return f"{path} (step {state.get('step')}{by})"


def load_newest(run_dir: str | Path, map_location: str | torch.device = "cpu"
                ) -> tuple[Path, dict[str, Any], list[tuple[Path, str]]]:
    """``(path, state, skipped)``: the newest step checkpoint of ``run_dir`` that loads, and the newer
    ones that did not (cut short by a power loss or a full disk), each with its error line."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: no checkpoints/step_*.pt in this run folder")
    skipped: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            return path, read_checkpoint(path, map_location), skipped
        except CheckpointError as exc:
            skipped.append((path, str(exc)))
    raise CheckpointError(f"{run_dir}: none of its {len(found)} checkpoint(s) is readable (newest: {skipped[0][1]})")


def warn_skipped(skipped: list[tuple[Path, str]], using: Path) -> None:
    for _, why in skipped:
        print(f"warning: {why}; using the newest readable one, {using.name}", file=sys.stderr)


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint file; ``CheckpointError`` (one line) if it is not a whole, valid one."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a checkpoint
        raise CheckpointError(f"{path}: not a readable i2i checkpoint: cut short or damaged ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path}: not an i2i checkpoint (no model/config)")
    check_version(path, state)
    for key, kind in _FIELDS.items():
        if key in state and (not isinstance(state[key], kind) or isinstance(state[key], bool)):
            raise CheckpointError(f"{path}: not an i2i checkpoint ({key} is {type(state[key]).__name__}, "
                                  f"expected {kind.__name__})")
    for part in ("model", "ema"):
        for name, value in (state.get(part) or {}).items():
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise CheckpointError(f"{path}: its weights hold NaN or Inf ({part} {name}); "
                                      "use an earlier checkpoint")
    return state


def check_version(path: Path, state: dict[str, Any]) -> None:
    """Refuse a checkpoint of a newer format; say so when another i2i version wrote it."""
    fmt, version = state.get("format", 1), state.get("i2i_version")
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {fmt!r} (written by i2i {version or 'unknown'}) is newer "
                              f"than this i2i {__version__} reads (up to {FORMAT}); update i2i")
    if version != __version__:
        who = f"i2i {version}" if version else "an i2i that did not record its version"
        print(f"note: {path} was written by {who} (format {fmt}); this is i2i {__version__}", file=sys.stderr)


def _shape(t: Any) -> str:
    return "x".join(map(str, t.shape)) if torch.is_tensor(t) else type(t).__name__


def _some(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (f" (+{len(names) - k} more)" if len(names) > k else "")


def load_weights(module: torch.nn.Module, values: dict[str, Any], what: str) -> None:
    """``module.load_state_dict(values)``, or one line saying how they differ (``what`` names the model)."""
    own = module.state_dict()
    missing = [k for k in own if k not in values]
    unexpected = [k for k in values if k not in own]
    shapes = [f"{k}: {_shape(values[k])} in the file, {_shape(v)} in the model" for k, v in own.items()
              if k in values and torch.is_tensor(v) and (not torch.is_tensor(values[k]) or values[k].shape != v.shape)]
    parts = [f"{len(missing)} missing ({_some(missing)})" if missing else "",
             f"{len(unexpected)} unexpected ({_some(unexpected)})" if unexpected else "",
             f"{len(shapes)} of another shape ({_some(shapes, 2)})" if shapes else ""]
    problems = "; ".join(p for p in parts if p)
    if not problems:
        try:
            module.load_state_dict(values)
            return
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            problems = str(exc).strip().splitlines()[0]
    raise CheckpointError(f"its weights do not fit {what}: {problems}")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Step checkpoints of a run folder, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def step_of(path: Path) -> int:
    """The step of a ``step_N.pt`` checkpoint file (-1 for other names)."""
    m = _STEP_FILE.match(Path(path).name)
    return int(m.group(1)) if m else -1


def resolve_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise CheckpointError(f"{path}: no checkpoints/step_*.pt in this run folder")
        return found[-1]
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> None:
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
