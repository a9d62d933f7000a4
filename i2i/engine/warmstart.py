"""A new run that starts from another run's weights (``train.init_from``): fine-tuning.

``train.init_from`` names an i2i run folder (its newest readable step checkpoint), a checkpoint file
(``best.pt``, ``step_N.pt``; read with ``weights_only=True``), or a folder written by
``i2i-export --format safetensors`` (its generators).  Reference files of other repositories go through
``i2i-import`` first, which writes a run folder.

The networks of the model (its top-level modules: ``G``, ``D``, ``G_A``...) that the file holds are loaded
whole, each one strictly (every tensor present and of the same shape, or one line naming the first that
is not); networks the file lacks (a discriminator beside an exported generator) keep their fresh
initialisation, and so do the optimizers, schedules, EMA and the step count: the run is a new one.  The
raw weights are used, not a checkpoint's EMA, which is what the new run's EMA then averages from.
A resumed run ignores ``init_from``: its own checkpoint holds everything.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..checkpoint import describe, load_weights, open_checkpoint
from ..errors import CheckpointError


def read_init_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict, description)`` of what ``train.init_from`` names; one line if it is none of the kinds."""
    from ..deploy import WEIGHTS, is_folder, read_weights

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"train.init_from: {path}: no such file or folder")
    if is_folder(path):
        tensors, meta = read_weights(path / WEIGHTS)
        return tensors, f"{path} ({meta.get('weights', 'raw')} weights of {meta.get('source') or 'a checkpoint'})"
    found, state = open_checkpoint(path)
    model = state.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(f"train.init_from: {found}: holds no model weights")
    return model, describe(found, state)


def init_from(model: torch.nn.Module, path: str | Path, quiet: bool = False) -> list[str]:
    """Load the networks ``path`` holds into ``model``; returns the names of the networks loaded."""
    state, source = read_init_weights(path)
    children = dict(model.named_children())
    by_net: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        net, _, rest = key.partition(".")
        by_net.setdefault(net, {})[rest] = value
    foreign = sorted(n for n in by_net if n not in children)
    if foreign or not by_net:
        what = f"networks {', '.join(foreign)} that" if foreign else "no networks"
        nets = [n for n, m in children.items() if any(True for _ in m.parameters())]
        raise CheckpointError(f"train.init_from: {source} holds {what} the model of this config "
                              f"(networks {', '.join(nets)}) does not have")
    for net, values in by_net.items():
        try:
            load_weights(children[net], values, f"network {net} of this config")
        except CheckpointError as exc:
            raise CheckpointError(f"train.init_from: {source}: {exc}") from None
    fresh = [n for n, m in children.items() if n not in by_net and any(True for _ in m.parameters())]
    if not quiet:
        print(f"initialised {', '.join(by_net)} from {source}" + (f"; {', '.join(fresh)} start fresh" if fresh else "")
              + "; optimizers, schedules and the step count start anew", file=sys.stderr)
    return list(by_net)
