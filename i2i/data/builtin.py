"""Procedurally generated datasets: ``data.root: builtin:NAME`` needs no download.

``builtin:shapes``: A is a flat-colour label map (background plus 2-5 rectangles,
ellipses and triangles, one colour per class), B is a "photo" of the same layout
(sky gradient, striped bricks, shaded spheres, graded triangles, sensor noise).
``builtin:haze``: B is a shapes "photo", A the same photo under synthetic haze
(atmospheric scattering, :mod:`i2i.data.haze`: depth growing towards the top of the
image, beta in [0.6, 1.8], airlight in [0.7, 1.0]), for dehazing demos.
Each image is a pure function of (name, phase, index, stream): the same call always
gives the same pixels.  Phases: train (64 items), val (16), test (16).
Images are square, ``size`` pixels (the datasets use ``max(load_size, crop_size)``),
and then go through the same transforms as image files.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..errors import DataError

PREFIX = "builtin:"
PHASE_SIZES = {"train": 64, "val": 16, "test": 16}

#: label colour of each class: background, rectangle, ellipse, triangle
SHAPES_PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)


def _shape_masks(rng: np.random.Generator, size: int) -> list[tuple[int, np.ndarray]]:
    """2-5 random shapes as (class, boolean mask), in drawing order."""
    shapes = []
    for _ in range(int(rng.integers(2, 6))):
        cls = int(rng.integers(1, 4))
        canvas = np.zeros((size, size), np.uint8)
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        rx, ry = rng.uniform(0.08, 0.25, 2) * size
        if cls == 1:
            cv2.rectangle(canvas, (int(cx - rx), int(cy - ry)), (int(cx + rx), int(cy + ry)), 1, -1)
        elif cls == 2:
            cv2.ellipse(canvas, (int(cx), int(cy)), (int(rx), int(ry)), 0, 0, 360, 1, -1)
        else:
            pts = np.array([[cx, cy - ry], [cx - rx, cy + ry], [cx + rx, cy + ry]], np.int32)
            cv2.fillPoly(canvas, [pts], 1)
        shapes.append((cls, canvas.astype(bool)))
    return shapes


def _photo_layer(cls: int, mask: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Float RGB rendering (0..255) of one shape of class ``cls`` over the whole canvas."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ys, xs = np.nonzero(mask)
    y0, y1 = (ys.min(), ys.max()) if ys.size else (0, size - 1)
    x0, x1 = (xs.min(), xs.max()) if xs.size else (0, size - 1)
    tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    if cls == 1:  # bricks: horizontal stripes with mortar lines
        period = max(4, size // 16)
        rows = (np.arange(size) // period) % 2
        shade = np.where(rows[:, None] == 1, 0.75, 1.0) * np.ones((1, size), np.float32)
        base = np.array([190, 95, 55], np.float32)
    elif cls == 2:  # sphere lit from the upper left
        cy, cx = (y0 + y1) / 2 / size, (x0 + x1) / 2 / size
        ry, rx = max(y1 - y0, 1) / 2 / size, max(x1 - x0, 1) / 2 / size
        r2 = ((yy - cy + 0.3 * ry) / ry) ** 2 + ((xx - cx + 0.3 * rx) / rx) ** 2
        shade = 0.35 + 0.75 * np.sqrt(np.clip(1.0 - r2 / 2.0, 0.0, 1.0))
        base = np.array([60, 175, 70], np.float32)
    else:  # triangle: left-to-right gradient
        t = np.clip((xx * size - x0) / max(x1 - x0, 1), 0.0, 1.0)
        shade = 0.55 + 0.5 * t
        base = np.array([70, 90, 205], np.float32)
    return shade[:, :, None] * base * tint


def render_shapes(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (label map, photo) pair, both ``uint8`` ``size x size x 3``."""
    shapes = _shape_masks(rng, size)
    yy = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    top, bottom = np.array([110, 160, 225], np.float32), np.array([215, 225, 235], np.float32)
    photo = np.broadcast_to(top + (bottom - top) * yy, (size, size, 3)).copy()
    classes = np.zeros((size, size), np.int64)
    for cls, mask in shapes:
        classes[mask] = cls
        photo[mask] = _photo_layer(cls, mask, rng, size)[mask]
    photo += rng.normal(0.0, 4.0, photo.shape)
    return SHAPES_PALETTE[classes], np.clip(np.round(photo), 0, 255).astype(np.uint8)


def render_haze(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (hazy, clear) pair, both ``uint8`` ``size x size x 3``."""
    from .haze import hazy_uint8

    _, clear = render_shapes(rng, size)
    beta, airlight = float(rng.uniform(0.6, 1.8)), float(rng.uniform(0.7, 1.0))
    return hazy_uint8(clear, None, beta, airlight), clear


#: builtin name -> renderer ``(rng, size) -> (A, B)``
BUILTINS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "shapes": render_shapes,
    "haze": render_haze,
}


def is_builtin(root: str) -> bool:
    return str(root).startswith(PREFIX)


@dataclass(frozen=True)
class BuiltinSet:
    """The items of one builtin dataset and phase."""

    name: str
    phase: str
    size: int

    @classmethod
    def from_root(cls, root: str, phase: str, size: int) -> "BuiltinSet":
        name = str(root)[len(PREFIX):]
        if name not in BUILTINS:
            raise DataError(f"data.root: unknown builtin dataset {root!r}; known: "
                            + ", ".join(PREFIX + n for n in sorted(BUILTINS)))
        if phase not in PHASE_SIZES:
            raise DataError(f"{root}: unknown phase {phase!r}; known: {', '.join(PHASE_SIZES)}")
        return cls(name, phase, max(int(size), 16))

    def __len__(self) -> int:
        return PHASE_SIZES[self.phase]

    def pair(self, index: int, stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) of item ``index``; another ``stream`` gives independent layouts."""
        seed = [zlib.crc32(self.name.encode()), zlib.crc32(self.phase.encode()), int(index), int(stream)]
        return BUILTINS[self.name](np.random.default_rng(seed), self.size)

    def path(self, index: int, side: str) -> str:
        return f"{PREFIX}{self.name}/{self.phase}/{side}/{index:04d}.png"
