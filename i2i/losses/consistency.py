"""Balanced consistency regularization, bCR (Zhao et al. 2020).

weight * E (D(x) - D(T(x)))^2 + fake_weight * E (D(G(z)) - D(T(G(z))))^2,
where D(.) is the per-sample critic value (mean over a PatchGAN map, so that a
flipped or shifted input is compared by its overall score rather than pixel
by pixel) and T a semantics-preserving augmentation:

* ``flip_translate`` (images, B x C x H x W): random horizontal flip and a random
  integer shift of up to ``translate`` times the image size in each axis,
  zero-padded, drawn per sample;
* ``jitter`` (any shape, e.g. 2-D points): additive Gaussian noise of std ``sigma``.

Both weights default to 10 (the paper's lambda_real = lambda_fake = 10).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import PENALTIES
from .penalties import Penalty, critic_value, run_fp32


def flip_translate(x: torch.Tensor, translate: float = 0.125, sigma: float = 0.0) -> torch.Tensor:
    """Per-sample random horizontal flip and zero-padded translation."""
    if x.dim() != 4:
        raise ValueError(f"flip_translate needs B x C x H x W images, got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    flip = torch.rand(b, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    ph, pw = int(round(h * translate)), int(round(w * translate))
    if ph == 0 and pw == 0:
        return x
    padded = F.pad(x, (pw, pw, ph, ph))
    dy = torch.randint(0, 2 * ph + 1, (b,)).tolist()
    dx = torch.randint(0, 2 * pw + 1, (b,)).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])


def jitter(x: torch.Tensor, translate: float = 0.0, sigma: float = 0.05) -> torch.Tensor:
    """Additive Gaussian noise of std ``sigma``."""
    return x + sigma * torch.randn_like(x)


AUGMENTS = {"flip_translate": flip_translate, "jitter": jitter}


class BalancedConsistency(Penalty):
    """bCR on real and fake samples."""

    def __init__(self, weight: float = 10.0, fake_weight: float | None = None, augment: str = "flip_translate",
                 translate: float = 0.125, sigma: float = 0.05) -> None:
        if augment not in AUGMENTS:
            raise ValueError(f"unknown augment {augment!r}; expected one of {', '.join(AUGMENTS)}")
        super().__init__(weight)
        self.fake_weight = self.weight if fake_weight is None else float(fake_weight)
        self.augment, self.translate, self.sigma = augment, float(translate), float(sigma)

    def __call__(self, D, real_input, fake_input, real_logits=None, fake_logits=None, generator=None) -> torch.Tensor:
        # the augmentations draw from the global RNG; ``generator`` (see i2i.losses.penalties) is not used
        loss = self.weight * self.term(D, real_input, real_logits)
        if self.fake_weight:
            loss = loss + self.fake_weight * self.term(D, fake_input.detach(), fake_logits)
        return loss

    def term(self, D, x: torch.Tensor, logits=None) -> torch.Tensor:
        """E (D(x) - D(T(x)))^2 for one batch (``logits`` = D(x) if already computed)."""
        x = x.detach().float()
        base = critic_value(run_fp32(D, x) if logits is None else logits)
        moved = critic_value(run_fp32(D, AUGMENTS[self.augment](x, self.translate, self.sigma)))
        return (base - moved).pow(2).mean()


PENALTIES.register("bcr")(BalancedConsistency)
