"""One-device speed settings of a training run: memory layout, compilation, cuDNN autotuning.

* ``train.channels_last``: the networks' 4-D weights and every 4-D input batch in
  channels-last memory layout (NHWC), which convolutions on tensor cores and oneDNN
  prefer; the values are the same, only the strides change.
* ``train.compile``: each network of the model's optimizer groups runs its ``forward``
  through ``torch.compile``.  Compilation happens at the first call, of the
  forward and of its backward together (torch would compile the backward at the first
  ``backward()``, where no fallback can redo the step); if it fails (no C compiler, an
  operation the compiler does not support...: an error of torch's compiler,
  :data:`COMPILE_ERRORS`) one line says so and every network runs eagerly from that
  call on.  Any other error is raised as it is; running out of memory is never taken
  for a failed compilation.  The modes that replay CUDA graphs
  (``reduce-overhead``, ``max-autotune``) are refused: a graph's outputs are
  overwritten by its next replay, and an iteration reuses a network's outputs
  across phases.  Parameters, buffers and state-dict
  keys are untouched, so checkpoints do not depend on the setting.  Penalties that
  differentiate D's gradient (R1, GP...) run D eagerly (:func:`i2i.losses.penalties.run_fp32`):
  compiled graphs do not support double backward.
* ``train.cudnn_benchmark``: cuDNN picks the fastest convolution algorithm per input
  shape (CUDA only; training images have one size).
* ``train.cpu_malloc_cache``: on CPU, glibc's malloc hands blocks above 128 KiB to
  the OS as soon as they are freed (``mmap``/``munmap``, and trimming of the heap's
  top), so every step faults the same hundreds of megabytes of fresh zeroed pages in
  again (a pix2pix 256 px step: 72k page faults, 7 % of its time on one core).
  :func:`cache_cpu_malloc` raises those thresholds (blocks up to 32 MiB from the heap,
  up to 1 GiB of free memory kept), as jemalloc or tcmalloc would; peak memory grows
  by a few percent.  A no-op off glibc.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
from typing import Any, Iterator

import torch
import torch._dynamo.exc
import torch._functorch.config
import torch._inductor.exc
from torch import nn

from ..errors import ConfigError

#: the torch.compile backend (tests swap it for one that fails)
BACKEND: Any = "inductor"
#: errors of torch's compiler (tracing, the backend, C++/CUDA compilation), after which a network runs eagerly
COMPILE_ERRORS = (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.CppCompileError,
                  torch._inductor.exc.CUDACompileError)
_EAGER_BACKWARD = "force_non_lazy_backward_lowering"  # (torch._functorch.config)
#: compile modes that replay CUDA graphs (refused, see the module's docstring)
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    """Tensors of ``batch`` on ``device`` (asynchronous from pinned memory); 4-D ones channels-last if asked."""
    def move(t: torch.Tensor) -> torch.Tensor:
        if channels_last and t.dim() == 4:
            return t.to(device, non_blocking=True, memory_format=torch.channels_last)
        return t.to(device, non_blocking=True)

    return {k: move(v) if torch.is_tensor(v) else v for k, v in batch.items()}


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # mallopt parameters (malloc.h)


def cache_cpu_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30, top_pad: int = 64 << 20) -> bool:
    """Keep freed memory in the process (glibc malloc; see the module's docstring); whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return all(mallopt(key, value) == 1 for key, value in ((_M_MMAP_THRESHOLD, mmap_threshold),
                                                           (_M_TRIM_THRESHOLD, trim_threshold),
                                                           (_M_TOP_PAD, top_pad)))


def networks(model: nn.Module, groups: dict[str, list[nn.Module]]) -> list[tuple[str, nn.Module]]:
    """The modules of the optimizer groups, each once, named by their attribute path in ``model``."""
    names = {id(m): name for name, m in model.named_modules()}
    seen: set[int] = set()
    out = []
    for modules in groups.values():
        for module in modules:
            if id(module) not in seen:
                seen.add(id(module))
                out.append((names.get(id(module), type(module).__name__), module))
    return out


class _Compiled:
    """``forward`` of one network through ``torch.compile``; eager after a failed compilation."""

    def __init__(self, name: str, module: nn.Module, mode: str, shared: dict) -> None:
        self.name, self.eager, self.shared = name, module.forward, shared
        options = {"mode": None if mode == "default" else mode}
        self.compiled = torch.compile(self.eager, backend=BACKEND, **options)

    def __call__(self, *args, **kwargs):
        if self.shared["failed"]:
            return self.eager(*args, **kwargs)
        try:
            with _backward_with_forward():
                return self.compiled(*args, **kwargs)
        except COMPILE_ERRORS as exc:  # compilation failed: run eagerly; an error eager code also raises is raised
            oom = out_of_memory(exc)
            if oom is not None:  # (autotuning ran out of memory: so would the step)
                raise oom from None
            self.shared["failed"] = True
            out = self.eager(*args, **kwargs)
            print(f"warning: train.compile: torch.compile failed for {self.name} ({_cause(exc)}); "
                  "training continues without compilation", file=sys.stderr)
            return out


@contextlib.contextmanager
def _backward_with_forward() -> Iterator[None]:
    """Compilations inside compile a graph's backward with its forward, inside the fallback of
    :class:`_Compiled` (torch would compile it at the first ``backward()``); a no-op on a torch without that
    setting."""
    config = torch._functorch.config
    if not hasattr(config, _EAGER_BACKWARD):
        yield
        return
    before = getattr(config, _EAGER_BACKWARD)
    setattr(config, _EAGER_BACKWARD, True)
    try:
        yield
    finally:
        setattr(config, _EAGER_BACKWARD, before)


def out_of_memory(exc: BaseException) -> BaseException | None:
    """The out-of-memory error in ``exc``'s chain of causes (torch's, the host's), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc).lower()
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
                isinstance(exc, RuntimeError) and not isinstance(exc, COMPILE_ERRORS)  # (which quote their cause)
                and ("out of memory" in text or "can't allocate memory" in text)):
            return exc
        exc = getattr(exc, "inner_exception", None) or exc.__cause__
    return None


def out_of_memory_line(exc: BaseException, step: int, batch: dict[str, Any], batch_size: int, amp: str) -> str:
    """One line naming what sets a training step's memory: the batch size, the image size, mixed precision."""
    shape = next((tuple(v.shape) for v in batch.values() if torch.is_tensor(v) and v.dim() == 4), None)
    size = f", {shape[-2]} x {shape[-1]} px images" if shape else ""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return (f"out of memory in training step {step} (data.batch_size {batch_size}{size}, train.amp {amp}): {first}; "
            "lower data.batch_size or data.crop_size, or use train.amp bf16")


def _cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost cause of a compilation error (the compiler's own message)."""
    root = exc
    while getattr(root, "inner_exception", None) is not None or root.__cause__ is not None:
        root = getattr(root, "inner_exception", None) or root.__cause__
    lines = [line.strip() for line in str(root).splitlines() if line.strip()]
    return type(root).__name__ + (f": {lines[0][:200]}" if lines else "")


def compile_networks(nets: list[tuple[str, nn.Module]], mode: str = "default") -> dict:
    """Route each network's ``forward`` through ``torch.compile``; returns the shared state
    (``{"failed": bool}``), where a failure of one switches all to eager."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPU hosts
    shared = {"failed": False}
    for name, module in nets:
        module.forward = _Compiled(name, module, mode, shared)
    return shared


def eager_networks(nets: list[tuple[str, nn.Module]]) -> None:
    """Undo :func:`compile_networks`."""
    for _, module in nets:
        if isinstance(module.__dict__.get("forward"), _Compiled):
            del module.forward


def prepare(model: nn.Module, groups: dict[str, list[nn.Module]], device: torch.device,
            channels_last: bool, compile: bool, compile_mode: str = "default", cudnn_benchmark: bool = True,
            cpu_malloc_cache: bool = False) -> dict | None:
    """Apply the settings above to a model already on ``device``; the compile state or None."""
    if compile and compile_mode in CUDA_GRAPH_MODES:
        raise ConfigError(f"train.compile_mode: {compile_mode} replays CUDA graphs, which i2i's training loop does not "
                          "support (a network's outputs are used again after its next call); use default or "
                          "max-autotune-no-cudagraphs")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    if device.type == "cpu" and cpu_malloc_cache:
        cache_cpu_malloc()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        return compile_networks(networks(model, groups), compile_mode)
    return None
