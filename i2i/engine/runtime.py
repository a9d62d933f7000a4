"""Device selection, numerical precision and determinism, mixed precision and seeding."""
from __future__ import annotations

import contextlib
import os
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


def set_numerics(device: torch.device, tf32: bool, deterministic: bool) -> None:
    """The process's precision and determinism policy (``train.tf32``, ``train.deterministic``).

    On CUDA, ``tf32`` lets fp32 convolutions (cuDNN) and matmuls (cuBLAS) run on TF32 tensor cores
    (Ampere and newer; torch's own default is TF32 for convolutions only); off, both compute in full fp32.
    ``deterministic`` asks for deterministic cuDNN algorithms and for torch's deterministic
    implementations (an op without one warns once and runs as it is), and sets
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless set already), which cuBLAS needs to be deterministic.
    Off, it undoes the first two (so a second run in the process starts from the same policy).
    """
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = bool(tf32)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)


def autocast(device: torch.device, amp: str):
    """Autocast context for ``amp`` in {off, bf16, fp16}."""
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_amp(device: torch.device, amp: str) -> str:
    """``auto``: bf16 where the device computes in bf16 natively (CUDA with bf16, a CPU whose oneDNN has a bf16
    path: AVX-512 BF16 or AMX), otherwise off; other values as they are."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "off"
    if device.type == "cpu":
        mkldnn_bf16 = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return "bf16" if mkldnn_bf16 is not None and mkldnn_bf16() else "off"
    return "off"


def check_amp(device: torch.device, amp: str) -> None:
    """fp16 is for CUDA (loss scaling exists on the CPU too, but few CPUs compute in fp16)."""
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.amp: fp16 needs a CUDA device (running on {device.type}); use bf16 or off")


class LossScalers:
    """fp16 loss scaling: one ``GradScaler`` per optimizer phase, a no-op unless ``amp`` is fp16 (bf16 has
    fp32's range and needs none).

    Each phase's scaler scales that phase's loss, unscales its group's gradients, steps and is updated
    once per iteration in which the phase runs.  One scaler for all phases could not be: a group stepped
    by two phases of one iteration (``D`` and the lazy ``D_reg``) would step one optimizer twice between
    two updates, which ``GradScaler`` refuses; and an overflow in one phase would lower the scale of the
    others.  A checkpoint holds ``{phase: state}``; older ones held one scaler's state, given to every
    phase, and a state written without fp16 (empty) leaves the scalers at their initial scale.
    """

    def __init__(self, device: torch.device, amp: str, phases) -> None:
        self.scalers = {name: torch.amp.GradScaler(device.type, enabled=(amp == "fp16")) for name in phases}

    def __getitem__(self, phase: str) -> torch.amp.GradScaler:
        return self.scalers[phase]

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        one = "scale" in state  # the single scaler of older checkpoints
        for name, scaler in self.scalers.items():
            saved = state if one else state.get(name, {})
            if saved:  # empty: written without fp16
                scaler.load_state_dict(saved)


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
