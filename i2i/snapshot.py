"""Tensors put back as they were: a copy taken once, copied back into the same tensors.

i2i changes state for a while and undoes it in several places: the batch-norm statistics of
a bad training step (:mod:`i2i.engine.guard`), those of translation with batch statistics and
of evaluation, the live weights while the EMA weights stand in for them.  Each takes a
:class:`Snapshot` (or uses :func:`restored`).
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch


class Snapshot:
    """Copies of ``tensors`` (on their own devices) to copy back into them, in place, later."""

    def __init__(self, tensors: Iterable[torch.Tensor]) -> None:
        self.saved = [(t, t.detach().clone()) for t in tensors]

    @torch.no_grad()
    def restore(self, where: torch.Tensor | None = None) -> None:
        """Copy the saved values back (only if the 0-dim bool ``where`` is true, when given: decided on the
        device, without reading it)."""
        for t, value in self.saved:
            t.copy_(value if where is None else torch.where(where.to(t.device), value, t))


@contextlib.contextmanager
def restored(tensors: Iterable[torch.Tensor]) -> Iterator[Snapshot]:
    """``tensors`` as they were on entry again on exit, an error's exit included."""
    snapshot = Snapshot(tensors)
    try:
        yield snapshot
    finally:
        snapshot.restore()
