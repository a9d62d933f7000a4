"""Multi-process data parallel training, launched with ``torchrun`` (one node or several).

Each process holds a full replica.  Parameters are broadcast from rank 0 at start;
the gradients of each phase are averaged across processes while backward runs
(:class:`~i2i.engine.reducer.GradReducer`), so every replica takes the same
optimizer step.  The running statistics of batch norms that normalize with their own
process's batch are broadcast from rank 0 before each step, as DDP does, in one
message per dtype (:func:`broadcast_statistics`); ``train.sync_bn`` makes batch
norms use the statistics of the whole global batch (:mod:`i2i.nn.sync_bn`), the same
on every process, and then nothing is broadcast.

Nothing here makes the host wait for the device between log steps: collectives on
device tensors are only enqueued, and the processes' agreement on each batch
(:func:`host_gather`) goes through host memory, over a CPU (gloo) process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ..nn.sync_bn import SyncBatchNorm


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    host_group: object = None  #: a process group for CPU tensors (None: the default one, when it is gloo)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def backend_for(device: torch.device) -> str:
    """The collective backend for tensors on ``device``: NCCL for CUDA, gloo for the rest (the CPU
    included on a host with GPUs, when ``train.device: cpu``)."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), with the backend of the
    training device (``train.device`` resolved by :func:`i2i.runtime.select_device`)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend)
    else:
        backend = dist.get_backend()
    if backend != "gloo":  # host_gather's CPU tensors need a gloo group (every process makes this call)
        info.host_group = dist.new_group(backend="gloo")
    return info


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def broadcast_coalesced(tensors: list[torch.Tensor], src: int = 0) -> None:
    """Copy rank ``src``'s values of ``tensors`` to every process: one broadcast per dtype and device."""
    by_kind: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        by_kind.setdefault((t.dtype, t.device), []).append(t)
    for group in by_kind.values():
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        dist.broadcast(flat, src=src)
        offset = 0
        with torch.no_grad():
            for t in group:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process (at start)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        tensors = [*module.parameters(), *module.buffers()]
        if tensors:
            broadcast_coalesced(tensors)


def unsynced_statistics(module: nn.Module) -> list[torch.Tensor]:
    """The buffers of ``module`` that can differ between processes: the running means and variances of the
    norm layers that normalize with their own process's batch (every one but
    :class:`~i2i.nn.sync_bn.SyncBatchNorm`, whose statistics are the global batch's).  The other buffers do not
    change in training, or change alike on every process (batch counters; spectral norm's vectors, which depend
    on the weights alone)."""
    out: dict[int, torch.Tensor] = {}
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats \
                and not isinstance(m, SyncBatchNorm):
            out.update((id(b), b) for b in (m.running_mean, m.running_var) if b is not None)
    return list(out.values())


def broadcast_statistics(module: nn.Module) -> None:
    """Copy rank 0's :func:`unsynced_statistics` to every process (before each step, so that all processes
    normalize alike in evaluation); nothing when there are none, as under ``train.sync_bn``."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        tensors = unsynced_statistics(module)
        if tensors:
            broadcast_coalesced(tensors)


def all_gather_object(obj):
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` in a single process)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def host_gather(values: list[int], info: DistInfo) -> list[list[int]]:
    """Every process's ``values`` (small integers, as many on each), in rank order: CPU tensors over a CPU
    process group, so that the host never waits for the device."""
    if not info.enabled:
        return [list(values)]
    mine = torch.tensor(values, dtype=torch.int64)
    out = [torch.empty_like(mine) for _ in range(info.world_size)]
    dist.all_gather(out, mine, group=info.host_group)
    return torch.stack(out).tolist()


def agreed_batches(loader: Iterable[dict[str, Any]], info: DistInfo, stop: Callable[[Exception | None], None]
                   ) -> Iterator[tuple[dict[str, Any], list[int] | None]]:
    """``loader``'s batches, each with every process's batch size (None in one process).  When the loader fails,
    ``stop(its error)`` (which raises); with several processes they agree on each batch first, so that a failure on
    one stops all of them (``stop(None)`` on the others): a process without a batch cannot take part in the step's
    collectives.  The agreement goes through host memory (:func:`host_gather`): it never waits for the device."""
    it = iter(loader)
    while True:
        failure = None
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as exc:
            failure = exc
        shares = None
        if info.enabled:
            size = 0 if failure is not None else next((len(v) for v in batch.values() if torch.is_tensor(v)), 0)
            agreed = host_gather([int(failure is not None), size], info)
            failed, shares = any(f for f, _ in agreed), [n for _, n in agreed]
        else:
            failed = failure is not None
        if failed:
            stop(failure)
        yield batch, shares


def max_rank(value: int, device: torch.device) -> int:
    """The largest of the processes' ``value`` (an integer), on every process (reads the device)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([int(value)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every process if ``flag`` is true on any (so that all stop together)."""
    return bool(max_rank(int(flag), device))


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
