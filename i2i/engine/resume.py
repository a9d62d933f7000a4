"""Resuming a run without losing anything: which checkpoint, which folder, which config.

* ``--resume RUN`` takes the newest readable checkpoint of the run folder; newer ones that
  do not load (cut short by a power loss or a full disk) are renamed ``*.unreadable``, kept
  and said so.
* A run resumes in place only from a checkpoint in a real run folder (``config.yaml`` and
  ``checkpoints/``) that has no newer step checkpoint.  From an older checkpoint it branches
  into a new folder ``RUN-from-stepN`` beside the run (its ``metrics.jsonl`` starts with the
  run's records up to step N), so no checkpoint is ever overwritten or pruned; from a file
  outside a run folder it starts a new run folder under ``train.out_dir``.
* The resumed run uses the config saved in the checkpoint, with ``--set`` on top.  A
  ``config.yaml`` edited since i2i wrote it (its first line holds a checksum of the rest)
  that differs from the checkpoint's config is not used: it is said so, and when the run
  resumes in place the edited file is kept as ``config.yaml.edited``.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..checkpoint import list_checkpoints, load_newest, read_checkpoint, resolve_checkpoint, step_of
from ..config.bounded import load_yaml
from ..config.tree import edited_since_saved
from ..errors import ConfigError
from ..utils import atomic_write_text


@dataclass
class ResumePoint:
    checkpoint: Path
    state: dict[str, Any]
    run_dir: Path | None  #: the run folder the checkpoint belongs to (None: it is in none)
    newer: list[Path] = field(default_factory=list)  #: step checkpoints of that run after this one

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def run_folder_of(checkpoint: Path) -> Path | None:
    """The run folder holding ``checkpoint`` in its ``checkpoints/``, if it is a real one."""
    parent = checkpoint.parent
    if parent.name == "checkpoints" and (parent.parent / "config.yaml").is_file():
        return parent.parent
    return None


def _unique(path: Path) -> Path:
    out, n = path, 1
    while os.path.lexists(out):
        n += 1
        out = path.with_name(f"{path.name}-{n}")
    return out


def open_resume_point(arg: str | Path) -> ResumePoint:
    """The checkpoint ``--resume`` names, loaded, with the run folder it belongs to."""
    path = Path(arg)
    if path.is_dir():
        ckpt, state, skipped = load_newest(path)
        run_dir = run_folder_of(ckpt)
        for bad, why in skipped:
            if run_dir is not None:  # kept, and out of the way of the checkpoints this run writes
                aside = _unique(bad.with_name(bad.name + ".unreadable"))
                bad.rename(aside)
                why += f" (kept as {aside.name})"
            print(f"warning: {why}; resuming from the newest readable one, {ckpt.name}", file=sys.stderr)
    else:
        ckpt = resolve_checkpoint(path)
        state = read_checkpoint(ckpt)
        run_dir = run_folder_of(ckpt)
    point = ResumePoint(ckpt, state, run_dir)
    if run_dir is not None:
        point.newer = [p for p in list_checkpoints(run_dir) if step_of(p) > point.step]
    return point


# --------------------------------------------------------------------------- the config
def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def config_changes(run_dir: Path, saved: dict) -> list[str]:
    """Keys where ``run_dir/config.yaml``, edited since i2i wrote it, differs from the checkpoint's config."""
    path = run_dir / "config.yaml"
    try:
        raw = path.read_text()
        if edited_since_saved(raw) is False:  # as i2i wrote it (maybe with --set of a later resume)
            return []
        text = load_yaml(raw, str(path))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError, ConfigError):
        return ["(the file is not readable YAML)"]
    ours = load_yaml(yaml.safe_dump(saved, sort_keys=False), "the checkpoint's config")  # the file's normal form
    a, b = _flat(text if isinstance(text, dict) else {"": text}), _flat(ours)
    return sorted(k for k in set(a) | set(b) if a.get(k, object()) != b.get(k, object()))


def say_config(point: ResumePoint, run_dir: Path, overrides: list[str]) -> None:
    """One line on the config the resume uses; one more if ``config.yaml`` was edited (kept aside in place)."""
    sets = f" with --set {' '.join(overrides)}" if overrides else ""
    note(f"resuming from step {point.step} ({point.checkpoint}) with the config saved in the checkpoint{sets}; "
         "change a setting with --set KEY=VALUE")
    if point.run_dir is None:
        return
    changed = config_changes(point.run_dir, point.state["config"])
    if not changed:
        return
    keys = ", ".join(changed[:6]) + (f" (+{len(changed) - 6} more)" if len(changed) > 6 else "")
    edited = point.run_dir / "config.yaml"
    if run_dir == point.run_dir:
        aside = _unique(edited.with_name("config.yaml.edited"))
        edited.rename(aside)
        note(f"{edited} was edited ({keys}) and is not used: kept as {aside.name}; pass changes with --set")
    else:
        note(f"{edited} was edited ({keys}) and is not used; pass changes with --set")


# --------------------------------------------------------------------------- metrics
def _records(path: Path, last_step: int) -> list[str]:
    """Lines of a ``metrics.jsonl`` that are whole JSON records of steps up to ``last_step``."""
    kept = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return kept
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        step = record.get("step") if isinstance(record, dict) else None
        if isinstance(step, int) and step <= last_step:
            kept.append(line)
    return kept


def cut_metrics(path: Path, last_step: int, source: Path | None = None) -> None:
    """Rewrite ``path`` (atomically) with the records of ``source`` (default: itself) up to ``last_step``,
    so that the log of a resumed run is the run that happened."""
    source = source or path
    if not source.is_file():
        return
    kept = _records(source, last_step)
    atomic_write_text(path, "".join(line + "\n" for line in kept))
