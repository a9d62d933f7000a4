"""Batch norm over the global batch of all processes (``train.sync_bn``).

``convert_sync_batchnorm(module)`` replaces every ``BatchNorm*d`` by a
:class:`SyncBatchNorm` holding the same parameters and buffers (a layer shared
by two networks stays shared), so state dicts are unchanged and checkpoints load
with or without it.  In training mode with several processes the layer
normalizes with the mean and variance of the whole global batch: on CUDA with
torch's own kernels, elsewhere (the CPU) with the two all-reduces below (torch's
layer refuses CPU tensors).  Otherwise it is a plain batch norm.

Inside ``local_statistics(module)`` the layers use their own process's batch:
evaluation (``test_batch_stats`` models translate in training mode) runs a
different number of images on each process and must not wait for the others.
Inside ``differentiable_twice(module)`` they use the all-reduces below on CUDA
too: torch's kernel has no double backward, which the gradient penalties
(R1, GP, DRAGAN...) take through the discriminator.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn


class _SumOverProcesses(torch.autograd.Function):
    """Sum of a tensor over all processes; its gradient is the sum of the gradients (differentiable again)."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _SumOverProcesses.apply(grad, ctx.group), None


def all_reduce(tensor: torch.Tensor, group) -> torch.Tensor:
    return _SumOverProcesses.apply(tensor, group)


class SyncBatchNorm(nn.SyncBatchNorm):
    local = False  #: use this process's batch only (see :func:`local_statistics`)
    twice = False  #: never torch's CUDA kernel, which has no double backward (see :func:`differentiable_twice`)

    def _synced(self) -> bool:
        return (self.training and not self.local and dist.is_available() and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)

    def _torch_kernel(self, x: torch.Tensor) -> bool:
        return x.device.type == "cuda" and not self.twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._synced():
            return nn.modules.batchnorm._BatchNorm.forward(self, x)
        if self._torch_kernel(x):
            return super().forward(x)
        self._check_input_dim(x)
        return self._all_reduce_forward(x)

    def _all_reduce_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global mean, then global variance (two passes, as exact as one process's batch norm)."""
        group = self.process_group or dist.group.WORLD
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = xf.new_full((1,), xf.numel() // xf.size(1))  # (filled on the device: no copy the host waits for)
        sums = all_reduce(torch.cat([xf.sum(dims), count]), group=group)
        n = sums[-1]
        mean = sums[:-1] / n
        centred = xf - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims), group=group) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                # (decided on the device, as everything in a training step)
                factor = self.momentum if self.momentum is not None else \
                    (1.0 / self.num_batches_tracked.double()).to(self.running_mean.dtype)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * torch.where(n > 1, n / (n - 1), torch.ones_like(n))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, memo: dict | None = None) -> nn.Module:
    """``module`` with its batch norms replaced by :class:`SyncBatchNorm` (in place where possible)."""
    memo = {} if memo is None else memo
    if id(module) in memo:
        return memo[id(module)]
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    memo[id(module)] = out
    for name, child in list(module.named_children()):
        setattr(out, name, convert_sync_batchnorm(child, memo))
    return out


@contextlib.contextmanager
def _flagged(module: nn.Module, flag: str) -> Iterator[None]:
    layers = [m for m in module.modules() if isinstance(m, SyncBatchNorm) and not getattr(m, flag)]
    for m in layers:
        setattr(m, flag, True)
    try:
        yield
    finally:
        for m in layers:
            setattr(m, flag, False)


def local_statistics(module: nn.Module):
    """Batch norms of ``module`` normalize with this process's batch only, for the duration."""
    return _flagged(module, "local")


def differentiable_twice(module: nn.Module):
    """Batch norms of ``module`` stay twice differentiable (the all-reduce path on every device), for the duration."""
    return _flagged(module, "twice")
