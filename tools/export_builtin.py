#!/usr/bin/env python
"""Write a built-in generated dataset to image files.

    python tools/export_builtin.py demo --phase val --size 64

writes ``demo/A/0000.png ...`` (label maps) and ``demo/B/0000.png ...`` (the
matching photos): inputs and targets to try ``i2i-translate`` and ``i2i-eval``
on without downloading anything.  Existing files are kept.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from i2i.cli.paths import check_output_dir
from i2i.data.builtin import BUILTINS, PHASE_SIZES, BuiltinSet
from i2i.data.io import write_image
from i2i.errors import ConfigError

MIN_SIZE, MAX_SIZE = 16, 4096  #: image sides it writes (each pair is rendered in memory)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="output folder (gets A/ and B/)")
    p.add_argument("--name", default="shapes", choices=sorted(BUILTINS))
    p.add_argument("--phase", default="val", choices=list(PHASE_SIZES))
    p.add_argument("--size", type=int, default=64, help=f"image side in pixels, {MIN_SIZE} to {MAX_SIZE}")
    args = p.parse_args(argv)
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        print(f"error: --size must be {MIN_SIZE} to {MAX_SIZE}, got {args.size}", file=sys.stderr)
        return 2
    try:
        check_output_dir(args.out, "out")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = BuiltinSet.from_root(f"builtin:{args.name}", args.phase, args.size)
    for i in range(len(data)):
        a, b = data.pair(i)
        for side, image in (("A", a), ("B", b)):
            path = args.out / side / f"{i:04d}.png"
            if not path.exists():
                write_image(path, image)
    print(f"wrote {len(data)} pairs into {args.out}/A and {args.out}/B", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
