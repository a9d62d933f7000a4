"""Energy-based objectives on an autoencoder discriminator (EBGAN, BEGAN).

The discriminator is an autoencoder whose output is an energy, its
reconstruction error, per sample (``i2i.nn.autoencoder``: shape (B,); larger
maps are averaged per sample).  Its energies stand where other losses take
logits, and they carry the encoder embedding of the batch as the attribute
``.embedding`` (B x h) for the pull-away term.

* ``ebgan`` (Zhao et al. 2017): L_D = E_r e(x) + E_f max(0, m - e(G(z))) (the
  hinge per sample, as in the paper), L_G = E_f e(G(z)) + pt_weight * PT(S)
  with S the fake embeddings and
  PT(S) = 1/(N(N-1)) sum_{i != j} cos^2(S_i, S_j).  The margin m depends on the
  energy scale (default 1.0, for per-pixel MSE of images in [-1, 1]).
* ``began`` (Berthelot et al. 2017): L_D = L(x) - k_t L(G(z)), L_G = L(G(z)),
  with L the mean energy (the paper's L1 error: use the autoencoder with
  ``energy: l1``).  Once per iteration, :meth:`update` sets
  k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) from the detached
  L(x), L(G(z)) of the iteration's :meth:`d_loss` calls (averaged over the
  discriminators of the model, and over processes under DDP) and records
  M_global = L(x) + |gamma L(x) - L(G(z))|; a non-finite balance leaves k_t as it was.  gamma defaults to 0.5 (0.75 is
  the other common choice), lambda_k to 0.001, k_0 to 0.  k_t and M_global live on the device (in float64
  where it has it), so that the update never makes the host wait; ``k`` and :meth:`logs` read them.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..registry import GAN_LOSSES
from .base import GANLoss, Logits, over_scales


def per_sample(e: torch.Tensor) -> torch.Tensor:
    """Energies reduced to one value per sample."""
    return e.flatten(1).mean(1) if e.dim() > 1 else e


def pull_away(embedding: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine similarity between distinct rows of ``embedding`` (B x h)."""
    s = F.normalize(embedding.float().flatten(1), dim=1)
    n = s.shape[0]
    if n < 2:
        return s.new_zeros(())
    cos2 = (s @ s.t()) ** 2
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def _embeddings(energies: Logits) -> list[torch.Tensor]:
    scales = [energies] if isinstance(energies, torch.Tensor) else list(energies)
    found = [getattr(e, "embedding", None) for e in scales]
    if any(s is None for s in found):
        raise ValueError("the pull-away term needs energies with an '.embedding' attribute "
                         "(use the 'autoencoder' discriminator) or pt_weight: 0")
    return found


class EBGAN(GANLoss):
    """Margin loss on autoencoder energies, optional pull-away term (EBGAN-PT)."""

    def __init__(self, margin: float = 1.0, pt_weight: float = 0.1) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin!r}")
        self.margin, self.pt_weight = float(margin), float(pt_weight)

    def _d(self, r, f):
        return per_sample(r).mean() + F.relu(self.margin - per_sample(f)).mean()

    def _g(self, f, r):
        return per_sample(f).mean()

    def g_loss(self, fake_logits: Logits, real_logits: Logits | None = None) -> torch.Tensor:
        loss = super().g_loss(fake_logits, real_logits)
        if self.pt_weight:
            pt = torch.stack([pull_away(s) for s in _embeddings(fake_logits)]).mean()
            loss = loss + self.pt_weight * pt
        return loss


class BEGAN(GANLoss):
    """Boundary-equilibrium objective with the k_t controller (state: k_t)."""

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k0: float = 0.0) -> None:
        if not 0 <= k0 <= 1:
            raise ValueError(f"k0 must be in [0, 1], got {k0!r}")
        self.gamma, self.lambda_k = float(gamma), float(lambda_k)
        # k_t and M_global (NaN until the first update), moved to the losses' device at the first d_loss
        self._state = torch.tensor([float(k0), math.nan], dtype=torch.float64)
        # sum of (L(x), L(G(z))) over the d_loss calls since the last update, and their number
        self._sum: torch.Tensor | None = None
        self._count = 0

    @property
    def k(self) -> float:
        """k_t (reads the device)."""
        return float(self._state[0])

    def _on(self, device: torch.device) -> torch.Tensor:
        if self._state.device != device:  # once: the first d_loss on this device
            self._state = self._state.to(device, torch.float32 if device.type == "mps" else torch.float64)
        return self._state

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        l_real = over_scales(lambda r, f: per_sample(r).mean(), real_logits, fake_logits)
        l_fake = over_scales(lambda r, f: per_sample(f).mean(), real_logits, fake_logits)
        loss = l_real - self._on(l_fake.device)[0].to(l_fake.dtype) * l_fake
        pair = torch.stack([l_real.detach(), l_fake.detach()])
        self._sum = pair if self._sum is None else self._sum + pair
        self._count += 1
        return loss

    def _g(self, f, r):
        return per_sample(f).mean()

    def update(self) -> None:
        if self._sum is None:
            return
        state = self._on(self._sum.device)
        pair = self._sum / self._count
        self._sum, self._count = None, 0
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(pair)
            pair /= dist.get_world_size()
        lr, lf = pair.to(state.dtype).unbind()
        balance = self.gamma * lr - lf
        k = (state[0] + self.lambda_k * balance).clamp(0.0, 1.0)
        new = torch.stack([k, lr + balance.abs()])
        self._state = torch.where(torch.isfinite(balance), new, state)  # a non-finite balance changes nothing

    def state_dict(self) -> dict:
        return {"k": self.k}

    def load_state_dict(self, state: dict) -> None:
        self._state = torch.tensor([float(state.get("k", self.k)), math.nan], dtype=torch.float64)

    def logs(self) -> dict[str, float]:
        k, m_global = self._state.tolist()
        return {"k_t": k, **({"m_global": m_global} if math.isfinite(m_global) else {})}


GAN_LOSSES.register("ebgan")(EBGAN)
GAN_LOSSES.register("began")(BEGAN)
