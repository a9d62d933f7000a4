"""Device selection and numerical precision: the device, TF32 and determinism, autocast (training and inference)."""
from __future__ import annotations

import contextlib
import os

import torch

from .errors import ConfigError


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
