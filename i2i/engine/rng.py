"""Seeds and random states: the run's seed, the step's generator, and the RNG states a checkpoint keeps."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """A generator seeded from the run seed and the step alone: unlike the global RNG (seeded with
    seed + rank), its state is the same on every process, and in a resumed run, with nothing to checkpoint."""
    return torch.Generator(device=device).manual_seed((seed * 0x9E3779B97F4A7C15 + step + 1) % 2**64)


def rng_state(device: torch.device | None = None) -> dict:
    """RNG states in a form ``torch.load(weights_only=True)`` accepts: Python's, NumPy's, torch's CPU
    generator and, for a CUDA ``device``, that device's generator alone (not every visible GPU's, so that
    a checkpoint resumes on a machine with fewer GPUs)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore :func:`rng_state`; its CUDA state goes to ``device`` (if CUDA).  Older checkpoints hold the
    states of every visible GPU: ``device``'s entry is taken, if there is one."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is None or device is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):
        index = torch.cuda.current_device() if device.index is None else device.index
        cuda = cuda[index] if index < len(cuda) else None
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)
