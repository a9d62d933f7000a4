#!/usr/bin/env python
"""Turn an aligned (A|B side by side) dataset into unpaired folders.

    python tools/split_aligned.py ../shared/data/facades datasets/facades_unpaired --phases train val

writes ``DST/trainA/NAME.png`` (left halves) and ``DST/trainB/NAME.png`` (right
halves) for each phase, so that an unpaired translator (CycleGAN) can train on
the same images as a paired one.  Existing files are kept; unreadable images are
skipped, listed at the end, and make the exit code 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from i2i.data.io import list_images, read_image, write_image
from i2i.errors import DataError


def split_one(path: Path, a_out: Path, b_out: Path) -> None:
    """Write the left and right halves of ``path`` where they are not there yet; DataError if unreadable."""
    image = read_image(path)
    half = image.shape[1] // 2
    if half == 0:
        raise DataError(f"{path}: {image.shape[1]} px wide, no A|B pair")
    for out, side in ((a_out, image[:, :half]), (b_out, image[:, half:])):
        if not out.exists():
            write_image(out, side)


def split(src: Path, dst: Path, phase: str) -> tuple[int, list[str]]:
    """(images of the phase, one line per image that could not be split)."""
    images = list_images(src / phase)
    if not images:
        raise SystemExit(f"error: no images in {src / phase}")
    failed, written = [], {}
    for path in tqdm(images, desc=phase, unit="img"):
        rel = path.relative_to(src / phase).with_suffix(".png")
        if rel in written:  # a.jpg and a.png: one output name
            failed.append(f"{path}: its halves would be {rel}, the name {written[rel].name}'s halves have")
            continue
        written[rel] = path
        a_out, b_out = dst / f"{phase}A" / rel, dst / f"{phase}B" / rel
        if a_out.exists() and b_out.exists():
            continue
        try:
            split_one(path, a_out, b_out)
        except DataError as exc:
            failed.append(str(exc))
    return len(images), failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", type=Path, help="aligned dataset root (holds PHASE/ folders)")
    p.add_argument("dst", type=Path, help="output root (gets PHASEA/ and PHASEB/ folders)")
    p.add_argument("--phases", nargs="+", default=["train"])
    args = p.parse_args(argv)
    failed = []
    for phase in args.phases:
        count, bad = split(args.src, args.dst, phase)
        print(f"{phase}: {count - len(bad)} of {count} pairs split", file=sys.stderr)
        failed += bad
    for line in failed:
        print(f"skipped: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
