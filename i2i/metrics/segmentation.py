"""Segmentation accuracy of photo -> labels translations (pix2pix / CycleGAN "FCN scores" style).

A generated label rendering is mapped to class indices by taking, per pixel, the
nearest palette colour (Euclidean distance in RGB; ties go to the lower index).
Scores come from the confusion matrix accumulated over the whole set (Long et al. 2015):

* per-pixel accuracy = correct pixels / counted pixels;
* per-class accuracy = mean over classes of ``TP / ground-truth pixels``;
* mean IoU = mean over classes of ``TP / (GT + predicted - TP)``.

Classes are ``0 .. num_classes - 1``.  A class with no ground-truth pixel is left
out of the per-class accuracy, and out of the mean IoU too unless it was predicted
(then its IoU is 0).  Ground-truth pixels equal to ``ignore_index`` or outside
``[0, num_classes)`` are not counted (a ground-truth 0 is a class unless
``ignore_index=0``).  For the CMP facades the palette holds
indices 1..12, so ``num_classes = 13`` and the unused index 0 drops out of the means.

Palette files hold lines ``index R G B``; ``#`` starts a comment.
"""
from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping

import numpy as np
import torch

from ..errors import DataError

Palette = Mapping[int, tuple[int, int, int]]
MAX_PALETTE_BYTES = 1 << 20  #: a palette file is read whole; one line per class


def read_palette(path: str | Path) -> dict[int, tuple[int, int, int]]:
    """Read ``index R G B`` lines into ``{index: (R, G, B)}`` ordered by index."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_PALETTE_BYTES:
            raise DataError(f"palette {path}: {path.stat().st_size} bytes, more than a palette file holds "
                            f"({MAX_PALETTE_BYTES}); give the 'index R G B' text file")
        lines = path.read_text(errors="replace").splitlines()  # a binary file fails below on its first line
    except OSError as exc:
        raise DataError(f"cannot read palette {path}: {exc.strerror or exc}") from None
    palette: dict[int, tuple[int, int, int]] = {}
    for no, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        try:
            index, r, g, b = (int(v) for v in parts)
        except ValueError:
            raise DataError(f"{path}:{no}: expected 'index R G B', got {line.strip()!r}") from None
        if index < 0 or not all(0 <= v <= 255 for v in (r, g, b)) or index in palette:
            raise DataError(f"{path}:{no}: bad or duplicate palette entry {line.strip()!r}")
        palette[index] = (r, g, b)
    if not palette:
        raise DataError(f"palette {path} has no entries")
    return dict(sorted(palette.items()))


def _palette_arrays(palette) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(palette, Mapping):
        items = sorted(palette.items())
        return np.array([i for i, _ in items], np.int64), np.array([c for _, c in items], np.float64)
    colors = np.asarray(palette, np.float64)
    if colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(f"palette must map index -> (R, G, B) or be a K x 3 array, got shape {colors.shape}")
    return np.arange(len(colors), dtype=np.int64), colors


def colors_to_labels(image, palette):
    """Nearest-palette-colour class index per pixel.

    ``image``: NumPy ``H x W x 3`` (-> ``H x W`` int64 array) or torch ``... x 3 x H x W``
    (-> ``... x H x W`` long tensor), values on the 0..255 scale.
    """
    indices, colors = _palette_arrays(palette)
    is_tensor = isinstance(image, torch.Tensor)
    if is_tensor:
        if image.dim() < 3 or image.shape[-3] != 3:
            raise ValueError(f"expected a ... x 3 x H x W tensor, got shape {tuple(image.shape)}")
        x = image.detach().to(torch.float64).movedim(-3, -1)
    else:
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 image, got shape {a.shape}")
        x = torch.from_numpy(a.astype(np.float64))
    best = torch.full(x.shape[:-1], float("inf"), dtype=torch.float64, device=x.device)
    label = torch.full(x.shape[:-1], int(indices[0]), dtype=torch.long, device=x.device)
    for index, color in zip(indices.tolist(), colors.tolist()):  # small K: one pass per colour
        dist = ((x - torch.tensor(color, dtype=torch.float64, device=x.device)) ** 2).sum(-1)
        closer = dist < best
        best = torch.where(closer, dist, best)
        label[closer] = index
    return label if is_tensor else label.numpy()


def confusion_matrix(pred_labels, gt_labels, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """``num_classes x num_classes`` counts, rows = ground truth, columns = prediction."""
    p = np.asarray(pred_labels.cpu() if isinstance(pred_labels, torch.Tensor) else pred_labels).astype(np.int64)
    g = np.asarray(gt_labels.cpu() if isinstance(gt_labels, torch.Tensor) else gt_labels).astype(np.int64)
    if p.shape != g.shape:
        raise ValueError(f"label map shapes differ: {p.shape} vs {g.shape}")
    keep = (g >= 0) & (g < num_classes)
    if ignore_index is not None:
        keep &= g != ignore_index
    p, g = p[keep], g[keep]
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted labels must lie in [0, {num_classes}), got {p.min()}..{p.max()}")
    return np.bincount(g * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores_from_confusion(hist: np.ndarray) -> dict[str, float]:
    """``pixel_acc``, ``class_acc`` and ``miou`` from a confusion matrix (see module docstring)."""
    hist = np.asarray(hist, np.float64)
    tp, gt, pred = np.diag(hist), hist.sum(axis=1), hist.sum(axis=0)
    union = gt + pred - tp
    total = hist.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        class_acc = tp[gt > 0] / gt[gt > 0]
        iou = tp[union > 0] / union[union > 0]
    nan = float("nan")
    return {
        "pixel_acc": float(tp.sum() / total) if total else nan,
        "class_acc": float(class_acc.mean()) if class_acc.size else nan,
        "miou": float(iou.mean()) if iou.size else nan,
    }


def segmentation_scores(pred_labels, gt_labels, num_classes: int, ignore_index: int | None = None) -> dict[str, float]:
    """Per-pixel accuracy, per-class accuracy and mean IoU of predicted vs ground-truth label maps."""
    return scores_from_confusion(confusion_matrix(pred_labels, gt_labels, num_classes, ignore_index))
