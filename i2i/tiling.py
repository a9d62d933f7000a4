"""Tiled inference: apply an image-to-image function to a large image tile by tile.

``tiled(fn, x, tile=512, overlap=32)`` cuts ``x`` (``B x C x H x W``) into the fewest
``tile x tile`` windows, spread evenly, that overlap by at least ``overlap`` pixels, runs ``fn`` on one window at a time and
blends the results.  Memory holds the output, one input window and whatever ``fn`` needs
for it, so a 4000 x 3000 photo costs the output (about 140 MB in float32) plus one tile's
activations instead of the whole image's.

Blending.  Along each axis, a tile's weight is 0 on the ``overlap // 4`` pixels next to an
edge it shares with another tile (where its padding differs from the untiled run), rises
linearly across the middle half of the overlap and is 1 elsewhere; the weights of all tiles
are normalized to sum to 1 at every pixel (they are separable, so no weight map is stored).
The blend hides seams; it is *exact* wherever every tile with a nonzero weight saw all of the
context ``fn`` looks at.  For a translation-equivariant ``fn`` with receptive-field radius
``r`` (a pixel depends on inputs at most ``r`` away), ``overlap >= 4 r`` makes the output
equal untiled inference everywhere (up to float rounding); with a smaller overlap the
difference is confined to the overlap bands.  Networks that downsample are equivariant only
to shifts by their ``size_multiple``: pass it as ``multiple`` so that every tile starts on
such a shift (``tile``, ``overlap`` and the image size must then be multiples of it).

Normalization.  Layers whose output depends on statistics of the whole input make tiles
inconsistent, because each tile computes its own: instance normalization (per-image mean and
variance), batch normalization with test-time batch statistics (``model.test_batch_stats``),
and any global pooling or attention over the whole image.  Tiled output then differs from
untiled output everywhere, and tiles can differ visibly in tone.  Batch normalization with
running statistics (eval mode), no normalization, and dropout off are consistent.

``image_grid`` lays equally sized images out as tiles of one picture (sample grids).
"""
from __future__ import annotations

from typing import Callable

import torch


def tile_starts(n: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of the fewest windows covering ``0..n`` with overlaps of at least ``overlap``.

    The windows are spread evenly, the first at 0 and the last ending at ``n``; the starts are
    rounded down to multiples of ``multiple`` (``tile - overlap`` and ``n`` must be multiples too).
    """
    if n <= tile:
        return [0]
    k = 1 + -(-(n - tile) // (tile - overlap))
    return [(i * (n - tile)) // (k - 1) // multiple * multiple for i in range(k)]


def _ramp(size: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D weight of one tile: zero margin, linear rise, one; at the edges shared with another tile."""
    w = torch.ones(size, dtype=torch.float64)
    if overlap == 0:
        return w
    margin = overlap // 4
    d = torch.arange(size, dtype=torch.float64)
    rise = lambda dist: ((dist - margin + 0.5) / (overlap - 2 * margin)).clamp(0, 1)  # noqa: E731
    if at_start:
        w = torch.minimum(w, rise(d))
    if at_end:
        w = torch.minimum(w, rise(size - 1 - d))
    return w


def axis_weights(n: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, torch.Tensor]]:
    """``(start, weights)`` of each window along an axis of length ``n``; the weights sum to 1 at every position."""
    starts = tile_starts(n, tile, overlap, multiple)
    size = min(tile, n)
    raw = [_ramp(size, overlap, s > 0, s + size < n) for s in starts]
    total = torch.zeros(n, dtype=torch.float64)
    for s, w in zip(starts, raw):
        total[s: s + size] += w
    if bool((total <= 0).any()):  # cannot happen while overlap < tile / 2
        raise RuntimeError(f"tiling leaves pixels without weight (n={n}, tile={tile}, overlap={overlap})")
    return [(s, w / total[s: s + size]) for s, w in zip(starts, raw)]


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int = 512, overlap: int = 32,
          multiple: int = 1) -> torch.Tensor:
    """``fn(x)`` computed on overlapping ``tile x tile`` windows and blended (see the module doc).

    ``fn`` maps ``B x C x h x w`` to ``B x C' x h x w``.  An image no larger than ``tile`` on both
    sides is passed to ``fn`` whole.  Run it under ``torch.no_grad()`` for inference.
    """
    if x.dim() != 4:
        raise ValueError(f"tiled expects B x C x H x W, got shape {tuple(x.shape)}")
    if multiple < 1 or tile < 1 or overlap < 0:
        raise ValueError(f"tile >= 1, overlap >= 0 and multiple >= 1 expected, got {tile}, {overlap}, {multiple}")
    if 2 * overlap >= tile:
        raise ValueError(f"overlap {overlap} must be less than half the tile {tile}")
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return fn(x)
    for name, value in (("tile", tile), ("overlap", overlap), ("image height", h), ("image width", w)):
        if value % multiple:
            raise ValueError(f"{name} {value} is not a multiple of {multiple}")
    rows, cols = axis_weights(h, tile, overlap, multiple), axis_weights(w, tile, overlap, multiple)
    out = None
    for y0, wy in rows:
        for x0, wx in cols:
            window = x[..., y0: y0 + wy.numel(), x0: x0 + wx.numel()]
            y = fn(window)
            if y.shape[-2:] != window.shape[-2:]:
                raise ValueError(f"fn changed the tile size from {tuple(window.shape[-2:])} to {tuple(y.shape[-2:])}")
            if out is None:  # blended in fp32 at least: fp16/bf16 weights and sums would leave seams
                out = torch.zeros(*y.shape[:2], h, w, dtype=torch.promote_types(y.dtype, torch.float32), device=y.device)
            weight = (wy[:, None] * wx[None, :]).to(y.device, out.dtype)
            out[..., y0: y0 + wy.numel(), x0: x0 + wx.numel()] += y.to(out.dtype) * weight
    return out.to(y.dtype)


def image_grid(rows: list[list[torch.Tensor]], pad: int = 2) -> torch.Tensor:
    """Tile equally sized C x H x W images (rows of columns) on a white background."""
    c, h, w = rows[0][0].shape
    n_rows, n_cols = len(rows), len(rows[0])
    grid = torch.ones(c, pad + n_rows * (h + pad), pad + n_cols * (w + pad))
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, top : top + h, left : left + w] = image
    return grid
