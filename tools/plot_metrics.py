#!/usr/bin/env python
"""Plot the curves of a run folder's ``metrics.jsonl`` into one PNG.

    python tools/plot_metrics.py runs/facades_pix2pix [--out curves.png] [--smooth 100]

One panel per logged value (``train/G_gan``, ``eval/psnr``, ...) against the step;
``--smooth N`` draws the mean over the last N steps over the raw curve.
Values that are not finite numbers (strings, nan, inf), records without a step and
unreadable lines (say, a half-written last line of a running training) are skipped.
Drawn with NumPy and OpenCV alone.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2i.cli.common import add_debug, run  # noqa: E402
from i2i.data.io import write_image  # noqa: E402
from i2i.errors import ConfigError, DataError  # noqa: E402

PANEL_W, PANEL_H = 420, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 26, 30
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK, GRID, RAW, LINE = (40, 40, 40), (225, 225, 225), (170, 195, 235), (25, 80, 170)


def read_series(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """``{key: (steps, values)}`` of the finite numbers in a JSONL file, and the number of unreadable lines."""
    points: dict[str, list[tuple[float, float]]] = {}
    bad = 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        step = record.get("step") if isinstance(record, dict) else None
        if not _finite(step):
            bad += 1
            continue
        for key, value in record.items():
            if key != "step" and _finite(value):
                points.setdefault(key, []).append((float(step), float(value)))
    series = {}
    for key, pts in points.items():
        a = np.array(sorted(pts, key=lambda p: p[0]))
        series[key] = (a[:, 0], a[:, 1])
    return series, bad


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def moving_average(steps: np.ndarray, values: np.ndarray, window: float) -> np.ndarray:
    """Mean of the values of the last ``window`` steps at each point (``steps`` ascending).

    The window is counted in steps, not points, so a value logged rarely (evaluation)
    is smoothed less than one logged every step.
    """
    c = np.concatenate([[0.0], np.cumsum(values)])
    hi = np.arange(1, len(values) + 1)
    lo = np.searchsorted(steps, steps - window, side="right")
    return (c[hi] - c[lo]) / (hi - lo)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside ``[lo, hi]``."""
    raw = (hi - lo) / max(count - 1, 1)
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float) -> str:
    return f"{v / 1000:g}k" if abs(v) >= 10000 else f"{v:.4g}"


def _span(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def draw_panel(canvas: np.ndarray, x0: int, y0: int, name: str, steps: np.ndarray, values: np.ndarray, smooth: int) -> None:
    """One curve with its axes into the ``PANEL_W x PANEL_H`` box at ``(x0, y0)`` of ``canvas``."""
    left, top, right, bottom = x0 + LEFT, y0 + TOP, x0 + PANEL_W - RIGHT, y0 + PANEL_H - BOTTOM
    (xlo, xhi), (ylo, yhi) = _span(steps), _span(values)

    def px(s, v):
        x = left + (np.asarray(s) - xlo) / (xhi - xlo) * (right - left)
        y = bottom - (np.asarray(v) - ylo) / (yhi - ylo) * (bottom - top)
        return np.stack([x, y], -1).round().astype(np.int32)

    for t in nice_ticks(ylo, yhi):
        y = int(px(xlo, t)[1])
        cv2.line(canvas, (left, y), (right, y), GRID, 1)
        text = _label(t)
        width = cv2.getTextSize(text, FONT, 0.4, 1)[0][0]
        cv2.putText(canvas, text, (left - 6 - width, y + 4), FONT, 0.4, INK, 1, cv2.LINE_AA)
    for t in nice_ticks(xlo, xhi):
        x = int(px(t, ylo)[0])
        cv2.line(canvas, (x, top), (x, bottom), GRID, 1)
        text = _label(t)
        width = cv2.getTextSize(text, FONT, 0.4, 1)[0][0]
        cv2.putText(canvas, text, (x - width // 2, bottom + 16), FONT, 0.4, INK, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (right, bottom), INK, 1)
    cv2.putText(canvas, name, (left, top - 8), FONT, 0.5, INK, 1, cv2.LINE_AA)
    curves = [(values, RAW), (moving_average(steps, values, smooth), LINE)] if smooth > 1 else [(values, LINE)]
    for ys, colour in curves:
        points = px(steps, ys)
        cv2.polylines(canvas, [points.reshape(-1, 1, 2)], False, colour, 1 if colour == RAW else 2, cv2.LINE_AA)
        if len(points) <= 50 and colour == LINE:
            for p in points:
                cv2.circle(canvas, (int(p[0]), int(p[1])), 3, colour, -1, cv2.LINE_AA)


def plot(series: dict[str, tuple[np.ndarray, np.ndarray]], columns: int = 3, smooth: int = 1) -> np.ndarray:
    """All panels on a white ``H x W x 3`` uint8 RGB image, ``columns`` per row."""
    columns = max(1, min(columns, len(series)))
    rows = math.ceil(len(series) / columns)
    canvas = np.full((rows * PANEL_H, columns * PANEL_W, 3), 255, np.uint8)
    for i, (name, (steps, values)) in enumerate(series.items()):
        draw_panel(canvas, (i % columns) * PANEL_W, (i // columns) * PANEL_H, name, steps, values, smooth)
    return canvas


def main_args(args: argparse.Namespace) -> int:
    if args.smooth < 1 or args.columns < 1:
        raise ConfigError("--smooth and --columns must be >= 1")
    src = Path(args.run)
    path = src / "metrics.jsonl" if src.is_dir() else src
    if not path.is_file():
        raise DataError(f"no metrics file: {path}")
    series, bad = read_series(path)
    if not series:
        raise DataError(f"{path}: no finite values to plot")
    out = Path(args.out) if args.out else path.with_suffix(".png")
    write_image(out, plot(series, args.columns, args.smooth))
    skipped = f" (skipped {bad} unreadable line(s))" if bad else ""
    print(f"wrote {out}: {len(series)} curve(s){skipped}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="run folder (holding metrics.jsonl) or a metrics .jsonl file")
    p.add_argument("--out", help="PNG to write (default: metrics.png beside metrics.jsonl)")
    p.add_argument("--smooth", type=int, default=1, metavar="N", help="also draw the mean over the last N steps")
    p.add_argument("--columns", type=int, default=3, help="panels per row (default: %(default)s)")
    add_debug(p)
    return run(main_args, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
