"""Gradient averaging over processes, overlapped with the backward pass.

Each optimizer group's parameters get persistent gradient buckets: one flat
tensor per bucket (about ``bucket_mb`` MiB, by dtype and device), and every
parameter's ``.grad`` is a view into its bucket, so autograd accumulates the
gradients in place and nothing is copied before or after communication.  A
hook after each parameter's gradient accumulation counts the bucket down; a full
bucket is all-reduced asynchronously while backward goes on (buckets are sent in
a fixed order, the same on every process).  ``finish`` sends the rest, waits,
divides by the number of processes, and gives ``grad = None`` back to the
parameters that no process used in this phase, as a single process would.

Why not one ``DistributedDataParallel`` per network: a translator's phases run
the same network several times per iteration, in several phases, with other
groups frozen, and penalties (R1, GP, DRAGAN) backpropagate through
``torch.autograd.grad(..., create_graph=True)``, which DDP does not support.  This
reducer sees only the parameters' accumulated gradients, so any graph works,
double backward included; a layer shared by two networks of a group is one
parameter and is reduced once.

After the first phase of a group the buckets are rebuilt in the order in which
the gradients arrived on rank 0 (that order is broadcast, so all processes agree),
so that buckets fill, and go out, as early as backward allows.

The parameters that get a gradient in a phase are learned at the phase's first
step (the host waits for the processes' answer once); later steps all-reduce
which parameters were used along with the gradients, without waiting, and
compare on the device: a phase in which the processes used other parameters
reports a mismatch (the trainer then skips its update on every process).  With
that all-reduce goes a flag of the caller's (the trainer's "this phase's loss is
not finite"), or-ed over the processes at no extra message.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _Bucket:
    def __init__(self, indices: list[int], params: list[nn.Parameter]) -> None:
        self.indices = indices
        first = params[indices[0]]
        self.flat = torch.zeros(sum(params[i].numel() for i in indices), dtype=first.dtype, device=first.device)
        self.pending = 0


def _view(flat: torch.Tensor, offset: int, p: torch.Tensor) -> torch.Tensor:
    """A slice of ``flat`` laid out like ``p`` (strided like it when ``p`` is dense, e.g. channels last)."""
    part = flat[offset : offset + p.numel()]
    dense = p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)
    return part.as_strided(p.shape, p.stride()) if dense else part.view(p.shape)


class _Group:
    """One optimizer group: its parameters, buckets and the state of the current phase."""

    def __init__(self, params: list[nn.Parameter], bucket_bytes: int) -> None:
        self.params, self.bucket_bytes = params, bucket_bytes
        self.ordered = False
        self.build(list(reversed(range(len(params)))))  # backward runs roughly from the last layer to the first

    def build(self, order: list[int]) -> None:
        open_: dict[tuple, list[int]] = {}
        sizes: dict[tuple, int] = {}
        chunks: list[list[int]] = []
        for i in order:
            p = self.params[i]
            key = (p.dtype, p.device)
            if key not in open_:
                open_[key], sizes[key] = [], 0
                chunks.append(open_[key])
            open_[key].append(i)
            sizes[key] += p.numel() * p.element_size()
            if sizes[key] >= self.bucket_bytes:
                del open_[key]
        self.buckets = [_Bucket(c, self.params) for c in chunks]
        self.bucket_of: list[int] = [0] * len(self.params)
        self.views: list[torch.Tensor] = [None] * len(self.params)  # type: ignore[list-item]
        for b, bucket in enumerate(self.buckets):
            offset = 0
            for i in bucket.indices:
                self.bucket_of[i] = b
                self.views[i] = _view(bucket.flat, offset, self.params[i])
                offset += self.params[i].numel()

    def start(self) -> None:
        for bucket in self.buckets:
            bucket.flat.zero_()
            bucket.pending = len(bucket.indices)
        for p, view in zip(self.params, self.views):
            p.grad = view
        self.used = [False] * len(self.params)
        self.arrival: list[int] = []
        self.sent = 0
        self.works: list = []


class GradReducer:
    """Averages the gradients of the phase's optimizer group over all processes.

    ``prepare(group, phase)`` before the phase's backward (it replaces ``zero_grad``),
    ``finish(flag)`` after it, before the optimizer step.
    """

    def __init__(self, groups: dict[str, list[nn.Parameter]], bucket_mb: float = 25.0, process_group=None) -> None:
        self.pg = process_group
        self.world = dist.get_world_size(process_group)
        bucket_bytes = max(1, int(bucket_mb * 2**20))
        self.groups = {name: _Group(params, bucket_bytes) for name, params in groups.items() if params}
        self.active: _Group | None = None
        self.phase = ""
        self.usage: dict[str, tuple[list[bool], torch.Tensor]] = {}  # the parameters a phase uses
        self.hooks = [p.register_post_accumulate_grad_hook(self._hook(g, i))
                      for g in self.groups.values() for i, p in enumerate(g.params)]

    def _hook(self, group: _Group, i: int):
        def ready(p: torch.Tensor) -> None:
            if self.active is not group:  # gradients of a group the phase does not step are not averaged
                return
            if group.used[i]:
                raise RuntimeError("gradient averaging: a parameter received a gradient twice in one phase "
                                   "(a phase must call backward once)")
            group.used[i] = True
            group.arrival.append(i)
            view = group.views[i]
            if p.grad.data_ptr() != view.data_ptr():  # autograd replaced the view (e.g. create_graph backward)
                view.copy_(p.grad)
                p.grad = view
            bucket = group.buckets[group.bucket_of[i]]
            bucket.pending -= 1
            if bucket.pending == 0:
                self._send(group, full_only=True)
        return ready

    def _send(self, group: _Group, full_only: bool) -> None:
        """Start the all-reduce of the next buckets, in order (only full ones while backward runs)."""
        while group.sent < len(group.buckets):
            bucket = group.buckets[group.sent]
            if full_only and bucket.pending:
                return
            group.works.append(dist.all_reduce(bucket.flat, group=self.pg, async_op=True))
            group.sent += 1

    def prepare(self, name: str, phase: str = "") -> None:
        """Zero the buckets of group ``name`` and make them the ``.grad`` of its parameters (for ``phase``)."""
        group = self.groups.get(name)
        if group is not None:
            group.start()
        self.active, self.phase = group, f"{name}/{phase}"

    def finish(self, flag: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Average the gradients of the prepared group over all processes (in place).  Returns, as 0-dim bools
        on the device, whether ``flag`` (0-dim, on the device) is true on any process, and whether the processes
        gave gradients to other parameters than at the phase's first step (None without a group)."""
        group, self.active = self.active, None
        if group is None:
            if flag is None:
                return None, None
            total = flag.reshape(1).to(torch.int32)
            dist.all_reduce(total, group=self.pg)
            return total[0] > 0, None
        device = group.params[0].device
        self._send(group, full_only=False)
        used = _to_device(group.used + [False], device)
        if flag is not None:
            used[-1] = flag
        known = self.usage.get(self.phase)
        group.works.append(dist.all_reduce(used, group=self.pg, async_op=known is not None))
        for work in group.works:
            if work is not None:
                work.wait()
        for bucket in group.buckets:
            bucket.flat.div_(self.world)
        if known is None:  # the phase's first step: learn which parameters it uses
            mask = [bool(n) for n in used[:-1].tolist()]
            known = self.usage[self.phase] = mask, torch.tensor(mask, device=device)
        mismatch = ((used[:-1] > 0) != known[1]).any()
        for p, n in zip(group.params, known[0]):
            if not n:  # no process used it: no gradient, so the optimizer leaves it alone
                p.grad = None
        if not group.ordered:
            self._reorder(group, device)
        return used[-1] > 0, mismatch

    def _reorder(self, group: _Group, device: torch.device) -> None:
        """Rebuild the buckets in rank 0's arrival order (taking effect at the group's next phase)."""
        seen = set(group.arrival)
        order = group.arrival + [i for i in reversed(range(len(group.params))) if i not in seen]
        order_t = torch.tensor(order, dtype=torch.int64, device=device)
        dist.broadcast(order_t, src=dist.get_global_rank(self.pg, 0) if self.pg is not None else 0, group=self.pg)
        grads = [p.grad for p in group.params]
        group.build(order_t.tolist())
        for p, view, grad in zip(group.params, group.views, grads):  # this phase's gradients move along
            if grad is not None:
                view.copy_(grad)
                p.grad = view
        group.ordered = True

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks = []


def _to_device(values: list[bool], device: torch.device) -> torch.Tensor:
    """``values`` as int32 on ``device``, copied without the host waiting (from pinned memory to a GPU)."""
    t = torch.tensor(values, dtype=torch.int32)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
