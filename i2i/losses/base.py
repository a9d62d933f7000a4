"""Common shape of an adversarial objective: the :class:`GANLoss` interface.

Every loss is a function of raw discriminator outputs ("logits", no sigmoid)
and is *minimized* by its own player.  Logits may be a tensor of any shape
(PatchGAN maps are reduced elementwise, then by the mean) or a list of tensors
(a multi-scale discriminator: the per-scale losses are averaged).  Losses are
computed in fp32 whatever the dtype of the logits (mixed precision).
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
from torch import nn

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


def as_scales(logits: Logits | None) -> list[torch.Tensor | None]:
    """``logits`` as a list of fp32 tensors (one per discriminator scale)."""
    if logits is None:
        return [None]
    if isinstance(logits, torch.Tensor):
        return [logits.float()]
    return [t.float() for t in logits]


def over_scales(fn: Callable[..., torch.Tensor], first: Logits, second: Logits | None = None) -> torch.Tensor:
    """Mean over discriminator scales of ``fn(first_s, second_s)``."""
    a, b = as_scales(first), as_scales(second)
    if second is not None and len(a) != len(b):
        raise ValueError(f"real and fake logits have {len(a)} and {len(b)} scales")
    if second is None:
        b = b * len(a)
    losses = [fn(x, y) for x, y in zip(a, b)]
    return losses[0] if len(losses) == 1 else torch.stack(losses).mean()


class GANLoss:
    """An adversarial objective: a D loss and a G loss of the logits.

    Subclasses implement ``_d(r, f)`` and ``_g(f, r)`` on single fp32 tensors;
    ``r`` is ``None`` in ``_g`` unless :attr:`needs_real_for_g` is true.
    """

    #: the G loss needs D's logits on the real batch (relativistic losses)
    needs_real_for_g: bool = False
    #: ``(penalty type, weight)`` used when the config asks for no penalty
    default_penalty: tuple[str, float] | None = None
    #: recommended D steps per G step (informational)
    n_critic: int = 1

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """Loss minimized by the discriminator."""
        return over_scales(self._d, real_logits, fake_logits)

    def g_loss(self, fake_logits: Logits, real_logits: Logits | None = None) -> torch.Tensor:
        """Loss minimized by the generator."""
        if self.needs_real_for_g and real_logits is None:
            raise ValueError(f"{type(self).__name__}.g_loss needs the real logits (needs_real_for_g)")
        return over_scales(self._g, fake_logits, real_logits if self.needs_real_for_g else None)

    def update(self) -> None:
        """Called once per iteration, after the D losses of every discriminator (BEGAN's k_t); no-op by default."""

    def after_d_step(self, D: nn.Module, ok: torch.Tensor | None = None) -> None:
        """Called after each D optimizer step (weight clipping); no-op by default.  ``ok`` (0-dim bool on the
        device): false when the step was skipped, and D must stay as it is (decided on the device)."""

    def state_dict(self) -> dict:
        """Persistent state to checkpoint ({} for stateless losses)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""

    def logs(self) -> dict[str, float]:
        """Extra scalars worth logging."""
        return {}

    def _d(self, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _g(self, f: torch.Tensor, r: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
