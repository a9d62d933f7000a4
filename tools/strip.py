#!/usr/bin/env python
"""Put images of the same name from several folders side by side, one row per name.

    python tools/strip.py --dirs $FACADES_A results/eval/p2p $FACADES_B --names 1.png 7.png \
        --height 192 --out results/pix2pix_facades.jpg

Each image is resized to ``--height`` (aspect kept); a name missing from a folder is
an error naming both.  Writes PNG or JPEG by the extension of ``--out``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from i2i.data.io import IMAGE_EXTENSIONS, list_images, read_image, write_image
from i2i.errors import DataError


def find(folder: Path, name: str) -> Path:
    """``folder/name``, or the one image of ``folder`` with the same stem (outputs may change extension)."""
    if (folder / name).is_file():
        return folder / name
    stem = Path(name).with_suffix("").as_posix()
    same = [p for p in list_images(folder) if p.relative_to(folder).with_suffix("").as_posix() == stem]
    if len(same) != 1:
        raise DataError(f"{folder}: no image named {name}")
    return same[0]


def strip(dirs: list[Path], names: list[str], height: int, gap: int = 4) -> np.ndarray:
    rows = []
    for name in names:
        tiles = []
        for d in dirs:
            img = read_image(find(d, name), 3)
            width = max(1, round(img.shape[1] * height / img.shape[0]))
            tiles.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
            tiles.append(np.full((height, gap, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, 0)[:-gap]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", nargs="+", type=Path, required=True, help="folders, left to right")
    ap.add_argument("--names", nargs="+", required=True, help="file names (relative to each folder), top to bottom")
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.height < 1:
        ap.error(f"--height must be >= 1, got {args.height}")
    if args.out.suffix.lower() not in IMAGE_EXTENSIONS:
        ap.error(f"--out {args.out}: unknown image extension (use one of {', '.join(sorted(IMAGE_EXTENSIONS))})")
    try:
        write_image(args.out, strip(args.dirs, args.names, args.height))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
