"""Device selection, mixed precision and seeding."""
from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from ..errors import ConfigError


def select_device(name: str = "auto", key: str = "train.device") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to torch.

    ``key`` names the setting in error messages (a config key or a CLI option).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}: {name!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: {name!r} requested but CUDA is not available")
    if device.type == "meta":
        raise ConfigError(f"{key}: {name!r} holds no data (shapes only); give auto, cpu or cuda")
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ConfigError(f"{key}: {name!r} is not available here ({str(exc).strip().splitlines()[0][:120]})") from None
    return device


def autocast(device: torch.device, amp: str):
    """Autocast context for ``amp`` in {off, bf16, fp16}."""
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def check_amp(device: torch.device, amp: str) -> None:
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.amp: fp16 needs a CUDA device (running on {device.type}); use bf16 or off")


def make_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    """Loss scaler; a no-op unless fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """A generator seeded from the run seed and the step alone: unlike the global RNG (seeded with
    seed + rank), its state is the same on every process, and in a resumed run, with nothing to checkpoint."""
    return torch.Generator(device=device).manual_seed((seed * 0x9E3779B97F4A7C15 + step + 1) % 2**64)


def rng_state() -> dict:
    """RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
