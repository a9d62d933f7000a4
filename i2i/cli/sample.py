"""``i2i-sample``: draw image pairs from a checkpoint of a translator that generates from noise (CoGAN).

A model that samples draws one image of each of its ``sample_domains`` from the same noise (CoGAN: A and B,
a pair).  Writes ``OUTPUT/A/00000.png ...``, ``OUTPUT/B/00000.png ...`` (a folder per domain; the files of
one name come from the same latent vector) and ``OUTPUT/grid.png`` (rows of A | B pairs: the first
:data:`GRID_PAIRS`).  Pairs are written as they are generated, :data:`CHUNK` at a time, so memory does not
grow with ``--n``.  Every file is written atomically; existing files are never replaced unless
``--overwrite``: without it the command writes nothing and says so.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import torch

from ..errors import I2IError
from .common import add_debug, add_import, add_trust_imports, check_seed, run

CHUNK = 64  #: pairs generated per forward pass
GRID_PAIRS = 64  #: pairs shown in grid.png


class UsageError(I2IError):
    """A bad argument: exit code 2."""

    exit_code = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-sample", description=__doc__.split("\n")[0].replace("``", ""))
    p.add_argument("--checkpoint", required=True, help="checkpoint .pt file or run folder (newest checkpoint)")
    p.add_argument("--n", type=int, default=64, help="number of pairs (default 64)")
    p.add_argument("--output", required=True, help="output folder: gets A/, B/ and grid.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (same seed, same pairs)")
    p.add_argument("--weights", default="ema", choices=["ema", "raw"],
                   help="ema: the averaged weights where the run kept them (train.ema), raw: the trained ones")
    p.add_argument("--device", default=None, help="torch device (default: cuda, mps, else cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_import(p)
    add_trust_imports(p)
    add_debug(p)
    return p


def pair_grid(batches: list[torch.Tensor], per_row: int) -> torch.Tensor:
    """One C x H x W grid of the images of ``batches`` (one per domain): ``per_row`` pairs a row, each pair
    A | B (grayscale shown as RGB)."""
    from ..tiling import image_grid

    batches = [t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t for t in batches]
    cells = [image for pair in zip(*batches) for image in pair]
    width = len(batches) * per_row
    return image_grid([cells[i: i + width] for i in range(0, len(cells), width)])


def _name(i: int) -> str:
    return f"{i:05d}.png"


def existing_outputs(out: Path, n: int, domains: tuple[str, ...]) -> list[Path]:
    """The output files of ``n`` pairs that exist already (found by listing ``out``, not by name: ``n`` may be large)."""
    found = [out / "grid.png"] if (out / "grid.png").exists() else []
    for side in domains:
        folder = out / side
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir()
                            if re.fullmatch(r"\d{5,}\.png", p.name) and int(p.stem) < n and p.name == _name(int(p.stem)))
    return sorted(found)


def sample(args: argparse.Namespace) -> int:
    from .. import load_translator
    from ..data.io import tensor_to_image, write_image
    from .paths import check_apart, check_output_dir

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    check_seed(args.seed)
    out = check_apart(check_output_dir(args.output, "--output"), "--output", [("--checkpoint", args.checkpoint)])
    translator = load_translator(args.checkpoint, device=args.device, weights=args.weights,
                                 imports=args.imports, trust_imports=args.trust_imports)
    model = translator.model
    domains = model.sample_domains
    if not domains:
        raise UsageError(f"--checkpoint {args.checkpoint}: a {model.settings.name} checkpoint translates images "
                         "and does not sample from noise (use i2i-translate)")
    existing = existing_outputs(out, args.n, domains)
    if existing and not args.overwrite:
        raise UsageError(f"{existing[0]} exists ({len(existing)} output file(s) do): use --overwrite or another --output")
    generator = torch.Generator().manual_seed(args.seed)
    grid: list[list[torch.Tensor]] = [[] for _ in domains]  # per domain, the chunks of the first GRID_PAIRS
    for start in range(0, args.n, CHUNK):
        batches = [t.clamp(-1, 1).cpu() for t in model.sample(min(CHUNK, args.n - start), generator)]
        for i, images in enumerate(zip(*batches), start):
            for domain, image in zip(domains, images):
                write_image(out / domain / _name(i), tensor_to_image(image))
        if start < GRID_PAIRS:
            for shown, images in zip(grid, batches):
                shown.append(images[: GRID_PAIRS - start])
    per_row = math.ceil(math.sqrt(min(args.n, GRID_PAIRS)))
    write_image(out / "grid.png", tensor_to_image(pair_grid([torch.cat(chunks) for chunks in grid], per_row)))
    folders = " and ".join(f"{out}/{domain}" for domain in domains)
    print(f"wrote {args.n} pair(s) into {folders}, grid: {out / 'grid.png'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(sample, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
