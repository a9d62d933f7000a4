"""Multi-process data parallel training, launched with ``torchrun``.

Each process holds a full replica.  After every backward pass the gradients of
the phase's parameters are averaged across processes in one flat all-reduce,
so every replica takes the same optimizer step; buffers (batch-norm running
statistics) are broadcast from rank 0 before each step, as DDP does.  This works for any order of
G/D phases (unlike wrapping each net in DDP, which expects one backward per
forward).  Parameters are broadcast from rank 0 at start.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend)
    return info


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def broadcast_module(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters and buffers (or its buffers only) to every process.

    Called with ``buffers_only`` before each step, as DDP does, so that batch-norm
    running statistics stay those of rank 0 everywhere.
    """
    if dist.is_initialized():
        tensors = [*module.buffers()] if buffers_only else [*module.parameters(), *module.buffers()]
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average ``.grad`` of ``params`` over all processes (one flat all-reduce)."""
    if not dist.is_initialized():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every process if ``flag`` is true on any (so that all stop together)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
