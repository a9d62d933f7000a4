#!/usr/bin/env python
"""Turn an aligned (A|B side by side) dataset into unpaired folders.

    python tools/split_aligned.py ../shared/data/facades datasets/facades_unpaired --phases train val

writes ``DST/trainA/NAME.png`` (left halves) and ``DST/trainB/NAME.png`` (right
halves) for each phase, so that an unpaired translator (CycleGAN) can train on
the same images as a paired one.  Existing files are kept.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from i2i.data.io import list_images, read_image, write_image


def split(src: Path, dst: Path, phase: str) -> int:
    images = list_images(src / phase)
    if not images:
        raise SystemExit(f"error: no images in {src / phase}")
    for path in tqdm(images, desc=phase, unit="img"):
        rel = path.relative_to(src / phase).with_suffix(".png")
        a_out, b_out = dst / f"{phase}A" / rel, dst / f"{phase}B" / rel
        if a_out.exists() and b_out.exists():
            continue
        image = read_image(path)
        half = image.shape[1] // 2
        write_image(a_out, image[:, :half])
        write_image(b_out, image[:, half:])
    return len(images)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", type=Path, help="aligned dataset root (holds PHASE/ folders)")
    p.add_argument("dst", type=Path, help="output root (gets PHASEA/ and PHASEB/ folders)")
    p.add_argument("--phases", nargs="+", default=["train"])
    args = p.parse_args(argv)
    for phase in args.phases:
        print(f"{phase}: {split(args.src, args.dst, phase)} pairs split", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
