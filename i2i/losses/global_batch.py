"""The global batch of a data-parallel run, seen from one process's share of it.

Under ``torchrun`` each process holds a slice of the global batch and the gradients
are averaged (:mod:`i2i.engine.reducer`).  A loss term that draws random numbers per
sample or takes a statistic over the batch (GP, LP and DRAGAN draw interpolation
weights and noise, DRAGAN takes the std of the real batch) gives the gradients of
one process with the whole batch only if it sees the global batch:

* :func:`batch_slice`: where this process's samples lie in the global batch, the
  processes' batches concatenated in rank order (local sizes may differ); inside
  :func:`shares` (the engine's training step, which knows every process's batch
  size) it is computed without communication, otherwise the sizes are all-gathered;
* :func:`shared_uniform`: U[0, 1) numbers drawn for the whole global batch from a
  generator whose state is the same on every process (the engine seeds it from the
  run seed and the step), of which this process keeps its own rows;
* :func:`global_std`: the std over the global batch.

Collectives go through ``torch.distributed``'s default process group, as
SyncBatchNorm's do, when it holds more than one process; every process must then
make the same calls.  In one process nothing is communicated and the local batch is
the global one.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch
import torch.distributed as dist

_SHARES: contextvars.ContextVar[tuple[int, ...] | None] = contextvars.ContextVar("shares", default=None)


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@contextlib.contextmanager
def shares(sizes: list[int] | tuple[int, ...] | None) -> Iterator[None]:
    """Within: every process's batch size is known (``sizes``, in rank order), so :func:`batch_slice` of a
    batch of this process's size asks no other process (and the host does not wait for the device)."""
    token = _SHARES.set(tuple(sizes) if sizes is not None else None)
    try:
        yield
    finally:
        _SHARES.reset(token)


def batch_slice(n: int, device: torch.device) -> tuple[int, int]:
    """``(offset, total)``: this process's ``n`` samples are rows ``[offset, offset + n)`` of the
    global batch of ``total`` samples; ``(0, n)`` in one process."""
    world = _world()
    if world == 1:
        return 0, n
    known = _SHARES.get()
    if known is not None and len(known) == world and known[dist.get_rank()] == n:
        return sum(known[: dist.get_rank()]), sum(known)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([n], dtype=torch.int64, device=device))
    sizes = torch.cat(sizes).tolist()
    return sum(sizes[: dist.get_rank()]), sum(sizes)


def shared_uniform(x: torch.Tensor, generator: torch.Generator | None = None,
                   per_sample: bool = False) -> torch.Tensor:
    """U[0, 1) numbers shaped like ``x``, or one per sample shaped to broadcast over ``x`` (``per_sample``).

    Without ``generator``: drawn for this process's samples from the global RNG, as ``torch.rand``.
    With it: drawn for the whole global batch from ``generator`` and sliced to this process's rows,
    so that each global sample gets the same numbers on any number of processes, provided the
    generator's state is the same on all of them (every process draws the whole global batch's numbers).
    """
    shape = (x.shape[0],) + ((1,) * (x.dim() - 1) if per_sample else tuple(x.shape[1:]))
    if generator is None:
        return torch.rand(shape, device=x.device, dtype=x.dtype) if per_sample else torch.rand_like(x)
    offset, total = batch_slice(x.shape[0], x.device)
    draw = torch.rand((total,) + shape[1:], generator=generator, device=generator.device, dtype=x.dtype)
    return draw[offset : offset + x.shape[0]].to(x.device)


def global_std(x: torch.Tensor) -> torch.Tensor:
    """Unbiased std of all elements of ``x`` over the global batch (``x.std()`` in one process),
    without gradient; with several processes from the all-reduced count, sum and sum of squares."""
    x = x.detach()
    if _world() == 1:
        return x.std()
    flat = x.double().flatten()
    stats = torch.stack([flat.new_full((), flat.numel()), flat.sum(), flat.pow(2).sum()])  # (no host copy)
    dist.all_reduce(stats)
    n, total, squares = stats.unbind()
    return ((squares - total * total / n) / (n - 1)).clamp(min=0).sqrt().to(x.dtype)
