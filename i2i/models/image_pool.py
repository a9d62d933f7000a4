"""History of generated images shown to the discriminator (Shrivastava et al. 2017)."""
from __future__ import annotations

import random

import torch
from torch import nn


class ImagePool(nn.Module):
    """Buffer of up to ``size`` past fakes.

    ``query(images)`` returns a batch of the same size where each image is, with
    probability 1/2 once the pool is full, swapped for a stored older fake (which
    the new one replaces).  The buffer is part of ``state_dict`` (as extra state),
    so a resumed run continues with the same history.  The choices come from Python's
    ``random`` (seeded per process and checkpointed with the run): host numbers, so that
    a training step never waits for the device to make them.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.images: list[torch.Tensor] = []

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif random.random() < 0.5:
                idx = random.randrange(len(self.images))
                out.append(self.images[idx].to(image.device, copy=True))
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def get_extra_state(self) -> dict:
        return {"images": [img.cpu() for img in self.images]}

    def set_extra_state(self, state: dict) -> None:
        self.images = list(state.get("images", []))
