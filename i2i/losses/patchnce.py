"""PatchNCE (Park et al., ECCV 2020): each patch of an output should be closer to the input patch at the
same place than to the input's other patches.

For one tapped layer, ``P`` positions are drawn at random (the same for every image of the batch, and
the same for the output's features and the input's: a patch's positive is its own place); the features
there are embedded by a projection head (:mod:`i2i.nn.heads`; without one they are only scaled to unit
length), giving per image the output's queries ``q`` (P x D) and the input's keys ``k``.  The logits
``q k^T / T`` make a P-way classification per query whose right answer is the diagonal:

    loss = mean over images and patches of  -log( exp(q_i . k_i / T) / sum_j exp(q_i . k_j / T) )

with the negatives from the same image only, then the mean over layers.  The keys are constants (no
gradient reaches the head or the generator through them), as in the authors' code; their code also
adds a logit of -10 / T for each patch's own key in place of it among the negatives, which weighs
exp(-143) and changes nothing in float32.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def patch_nce(q: torch.Tensor, k: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Mean cross-entropy of the ``B x P x P`` logits ``q k^T / temperature`` against the diagonal, for
    queries and keys ``B x P x D`` (computed in float32, outside autocast)."""
    with torch.autocast(q.device.type, enabled=False):
        logits = torch.bmm(q.float(), k.float().transpose(1, 2)) / temperature
        b, p, _ = logits.shape
        target = torch.arange(p, device=logits.device).repeat(b)
        return F.cross_entropy(logits.reshape(b * p, p), target)


def pick(feat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The features of ``feat`` (B x C x H x W) at the flat positions ``ids``: B x P x C."""
    return feat.flatten(2)[:, :, ids].transpose(1, 2)


class PatchNCELoss:
    """The PatchNCE loss over several tapped layers (see the module docstring)::

        nce = PatchNCELoss(temperature=0.07, num_patches=256)
        loss = nce(G.taps(fake, layers), G.taps(real, layers), head, generator)

    ``generator`` (a ``torch.Generator`` on the features' device, else the global RNG) draws the positions:
    data-parallel processes that pass generators in the same state draw the same ones.  A layer with fewer
    than ``num_patches`` positions gives all of them.
    """

    def __init__(self, temperature: float = 0.07, num_patches: int = 256) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if num_patches < 1:
            raise ValueError(f"num_patches must be >= 1, got {num_patches!r}")
        self.temperature, self.num_patches = float(temperature), int(num_patches)

    def patch_ids(self, feat: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``min(num_patches, H * W)`` distinct flat positions of ``feat``, drawn on its device."""
        n = feat.shape[2] * feat.shape[3]
        return torch.randperm(n, generator=generator, device=feat.device)[: min(self.num_patches, n)]

    def patches(self, out_feats: Sequence[torch.Tensor], in_feats: Sequence[torch.Tensor],
                generator: torch.Generator | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The sampled features ``(queries, keys)``, B x P x C per layer, at the same positions in both."""
        if len(out_feats) != len(in_feats):
            raise ValueError(f"PatchNCE: {len(out_feats)} output layers for {len(in_feats)} input layers")
        queries, keys = [], []
        for q, k in zip(out_feats, in_feats):
            if q.shape != k.shape:
                raise ValueError(f"PatchNCE: output features {tuple(q.shape)} and input features {tuple(k.shape)}")
            ids = self.patch_ids(k, generator)
            queries.append(pick(q, ids))
            keys.append(pick(k.detach(), ids))
        return queries, keys

    def __call__(self, out_feats: Sequence[torch.Tensor], in_feats: Sequence[torch.Tensor],
                 head: nn.Module | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        queries, keys = self.patches(out_feats, in_feats, generator)
        if head is None:
            queries = [F.normalize(q, dim=-1, eps=1e-7) for q in queries]
            keys = [F.normalize(k, dim=-1, eps=1e-7) for k in keys]
        else:
            queries = head(queries)
            with torch.no_grad():
                keys = head(keys)
        losses = [patch_nce(q, k, self.temperature) for q, k in zip(queries, keys)]
        return torch.stack(losses).mean()
