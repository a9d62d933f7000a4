"""Paired preprocessing: resize, crop and flip applied identically to A and B.

Presets (``data.preprocess``), as in the pix2pix/CycleGAN papers' code:

* ``resize_and_crop``: resize to ``load_size x load_size``, then crop ``crop_size``;
* ``scale_width``: resize the width to ``load_size`` keeping the aspect ratio (height at
  least ``crop_size``), then crop ``crop_size x crop_size``;
* ``crop``: crop ``crop_size x crop_size`` from the image as it is;
* ``none``: no crop; height and width are resized to the nearest multiple of
  ``size_multiple`` (4 by default; a generator may need more: 256 for ``unet_256``).

Training crops are random and images are flipped horizontally with p = 0.5 (unless
``no_flip``); evaluation (``train=False``) uses centre crops and no flip.  An image
smaller than the crop raises :class:`DataError` (it is never padded).  When B's size
differs from A's, B is first resized to A's size.  Resizing uses area interpolation
when shrinking and bicubic when enlarging.

The random draws come from torch's generator (one seed per call), so ``torch.manual_seed``
and the DataLoader's per-worker seeding make them reproducible.
"""
from __future__ import annotations

from typing import Callable

import albumentations as A
import cv2
import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError

PRESETS = ("resize_and_crop", "scale_width", "crop", "none")


def resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``H x W x C`` to ``height x width x C`` (area when shrinking, bicubic otherwise)."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return arr
    interp = cv2.INTER_AREA if width <= w and height <= h else cv2.INTER_CUBIC
    out = cv2.resize(arr, (width, height), interpolation=interp)
    return out.reshape(height, width, -1) if arr.ndim == 3 else out


def _target_size(preset: str, h: int, w: int, load: int, crop: int, multiple: int = 4) -> tuple[int, int]:
    """(height, width) after the deterministic resize step of ``preset``."""
    if preset == "resize_and_crop":
        return load, load
    if preset == "scale_width":
        return int(max(load * h / w, crop)), load
    if preset == "none":
        return max(multiple, int(round(h / multiple)) * multiple), max(multiple, int(round(w / multiple)) * multiple)
    return h, w


class PairTransform:
    """Callable ``(a, b=None) -> (a', b')``; ``b'`` is ``None`` when ``b`` is not given."""

    def __init__(self, preprocess: str, load_size: int, crop_size: int, flip: bool, train: bool,
                 size_multiple: int = 4) -> None:
        if preprocess not in PRESETS:
            raise DataError(f"data.preprocess: unknown preset {preprocess!r}; known: {', '.join(PRESETS)}")
        self.preprocess, self.load_size, self.crop_size, self.train = preprocess, load_size, crop_size, train
        self.size_multiple = size_multiple
        self.crops = preprocess != "none"
        ops: list = []
        if self.crops:
            crop_cls = A.RandomCrop if train else A.CenterCrop
            ops.append(crop_cls(height=crop_size, width=crop_size))
        if flip and train:
            ops.append(A.HorizontalFlip(p=0.5))
        self.random = train and bool(ops)
        self.compose = A.Compose(ops, additional_targets={"b": "image"})

    def __call__(self, a: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        h, w = a.shape[:2]
        if b is not None and b.shape[:2] != (h, w):
            b = resize(b, w, h)
        th, tw = _target_size(self.preprocess, h, w, self.load_size, self.crop_size, self.size_multiple)
        if self.crops and (th < self.crop_size or tw < self.crop_size):
            raise DataError(
                f"image of {w}x{h} px is smaller than crop_size {self.crop_size} after preprocess "
                f"{self.preprocess!r} (lower data.crop_size or use another preprocess)"
            )
        a = resize(a, tw, th)
        b = resize(b, tw, th) if b is not None else None
        if self.random:
            self.compose.set_random_seed(int(torch.randint(0, 2**31 - 1, ())))
        out = self.compose(image=a, b=b) if b is not None else self.compose(image=a)
        return _keep_channels(out["image"], a), (_keep_channels(out["b"], b) if b is not None else None)


def _keep_channels(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(out)
    return out[:, :, None] if ref.ndim == 3 and out.ndim == 2 else out


def build_transform(cfg: DataConfig, train: bool) -> Callable[..., tuple[np.ndarray, np.ndarray | None]]:
    """The paired transform of ``cfg.preprocess`` for training (random) or evaluation (deterministic)."""
    return PairTransform(cfg.preprocess, cfg.load_size, cfg.crop_size, not cfg.no_flip, train, cfg.size_multiple)
