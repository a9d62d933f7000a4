"""``i2i-translate``: translate every image of a folder (or one file) with a checkpoint.

``--method dcp`` dehazes with the dark channel prior (:mod:`i2i.dehaze.dcp`) instead: no
checkpoint, no training.

Output files mirror the input tree: same relative paths, names and formats.
Existing outputs are kept unless ``--overwrite``; unreadable inputs are
skipped, listed at the end, and make the exit code 1.

Memory is bounded: an input with more pixels than ``--max-pixels`` is skipped unread
(listed at the end); an image with more than ``--tile-above`` pixels (2048 x 2048) is
translated in overlapping ``--tile`` x ``--tile`` tiles (:mod:`i2i.tiling`; ``--method dcp`` never tiles); with ``--resize``
a JPEG is decoded at the smallest of 1/8, 1/4, 1/2, 1/1 of its size that keeps the
network's input size.

Decoding (``--workers`` processes), inference (``--batch-size`` images of equal size at
a time, ``--amp``) and encoding and writing (``--write-threads``) overlap
(:mod:`i2i.pipeline`); the files are those of one image at a time.

Inputs are never written to.  An ``--output`` equal to the ``--input`` folder is
refused; an ``--output`` folder inside it is left out of the inputs.  A run in which
an output file would be an input file, or two inputs would be written to one output
file (``--ext png`` with ``a.jpg`` and ``a.png``; names compared ignoring case, as
some file systems do), is refused with the list of clashes before anything is
written (exit code 2).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import ConfigError, DataError, I2IError
from .common import add_debug, add_import, add_trust_imports, check_seed, run
from ..reference import is_reference_file
from .paths import check_gallery_dir, check_output_dir, file_ids, inside

#: defaults of --tile, --tile-overlap and --tile-above: a 512 px tile of the 56-layer Tiramisu
#: needs about 0.9 GB on a CPU, a 2048 px tile 14 GB
TILE, OVERLAP, TILE_ABOVE = 512, 64, 2048 * 2048


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-translate", description="Translate a folder of images with a trained checkpoint.")
    p.add_argument("--checkpoint", help="checkpoint .pt file or run folder (newest checkpoint), or a generator .pth "
                                        "file of pytorch-CycleGAN-and-pix2pix or contrastive-unpaired-translation")
    p.add_argument("--arch", default=None, metavar="NAME",
                   help="with a reference .pth file whose keys do not tell it: its generator (resnet_9blocks, "
                        "resnet_6blocks, unet_256, unet_128)")
    p.add_argument("--method", choices=["dcp"], default=None,
                   help="translate without a checkpoint: dcp = dark channel prior dehazing (He et al. 2009)")
    p.add_argument("--input", required=True, help="image file or folder (searched recursively)")
    p.add_argument("--output", required=True, help="output folder (mirrors the input tree)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
    p.add_argument("--batch-size", type=int, default=1, help="consecutive images of equal size translated together")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="processes decoding the inputs while the network runs (0: decode in this process); "
                        "at most the CPUs left to it by the network (on CPU: torch's threads)")
    p.add_argument("--write-threads", type=int, default=2, metavar="N",
                   help="threads encoding and writing the outputs while the network runs (0: write in this thread)")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"],
                   help="mixed precision of the network (fp16: CUDA only; bf16: CUDA, or a CPU with bf16 support)")
    p.add_argument("--device", default=None, help="torch device (default: cuda, mps, else cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--seed", type=int, default=0, help="seed of test-time dropout (pix2pix), for repeatable outputs")
    p.add_argument("--resize", type=int, default=0, metavar="N",
                   help="translate at N x N (the training scale), then resize the result back to the input size "
                        "(area interpolation when shrinking, bicubic when enlarging, as data.preprocess does)")
    p.add_argument("--ext", default="", metavar="EXT",
                   help="write outputs in this format (png, jpg, webp...) instead of the input's; names keep their stems")
    p.add_argument("--aligned", action="store_true",
                   help="inputs hold A|B side by side (pix2pix layout): translate the A half (the B half with BtoA)")
    p.add_argument("--weights", default="ema", choices=["ema", "raw"],
                   help="ema: the averaged weights where the run kept them (train.ema), raw: the trained ones")
    p.add_argument("--html", metavar="DIR", help="also write a page of the inputs and outputs side by side into DIR")
    p.add_argument("--max-pixels", type=int, default=0, metavar="N",
                   help="skip (and list) inputs with more than N pixels, unread (default: $I2I_MAX_PIXELS, "
                        "else 67108864 = 8192 x 8192)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help=f"translate large images (see --tile-above) in overlapping N x N tiles, which bounds "
                        f"memory (default: {TILE}; 0: never tile)")
    p.add_argument("--tile-above", type=int, default=TILE_ABOVE, metavar="PIXELS",
                   help=f"tile images with more pixels than this and a side longer than the tile (default: {TILE_ABOVE}"
                        " = 2048 x 2048; 0: every image with a side longer than the tile)")
    p.add_argument("--tile-overlap", type=int, default=None, metavar="PX",
                   help=f"overlap of neighbouring tiles (default: {OVERLAP}); tile and overlap are rounded up to "
                        "multiples of the generator's size multiple")
    add_import(p)
    add_trust_imports(p)
    add_debug(p)
    return p


#: written into each --output folder: its images are not inputs of a translation of a folder above it
OUTPUT_MARK = ".i2i-translations"


def _inputs(path: Path, out_root: Path) -> list[tuple[Path, Path]]:
    """``(input file, output path relative to --output)``; an output folder inside ``path`` is no input."""
    from ..data.io import IMAGE_EXTENSIONS, list_images

    if path.is_file():
        if path.suffix.lower().lstrip(".") not in {e.lstrip(".") for e in IMAGE_EXTENSIONS}:
            raise I2IError(f"--input {path}: not an image file")
        return [(path, Path(path.name))]
    if path.is_dir():
        if path.resolve() == out_root.resolve():
            raise ConfigError(f"--output {out_root}: is the --input folder: translations would replace the inputs; "
                              "give another folder")
        found = list_images(path)
        if inside(out_root, path):
            kept = [p for p in found if not inside(p, out_root)]
            if len(kept) < len(found):
                print(f"note: --output {out_root} lies inside --input {path}: its {len(found) - len(kept)} image(s) "
                      "are not read as inputs", file=sys.stderr)
            found = kept
        marked: dict[Path, bool] = {}

        def earlier_output(p: Path) -> bool:
            folders = [path / f for f in p.relative_to(path).parents[:-1]]
            return any(marked.setdefault(f, (f / OUTPUT_MARK).is_file()) for f in folders)

        kept = [p for p in found if not earlier_output(p)]
        if len(kept) < len(found):
            print(f"note: {len(found) - len(kept)} image(s) under --input {path} lie in output folders of earlier "
                  f"translations (marked {OUTPUT_MARK}) and are not read as inputs", file=sys.stderr)
        found = kept
        if not found:
            raise DataError(f"--input {path}: no images in this folder (looked for "
                            f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
        return [(p, p.relative_to(path)) for p in found]
    raise I2IError(f"--input not found: {path}")


def _some(items: list[str], k: int = 5) -> str:
    return "; ".join(items[:k]) + (f"; ... (+{len(items) - k} more)" if len(items) > k else "")


def check_plan(jobs: list[tuple[Path, Path]], out_root: Path) -> None:
    """No output file is an input file, and no two inputs are written to one output file."""
    by_name: dict[str, list[tuple[Path, Path]]] = {}
    for src, rel in jobs:
        by_name.setdefault(rel.as_posix().casefold(), []).append((src, rel))
    clashes = [f"{' + '.join(str(s) for s, _ in group)} -> {out_root / group[-1][1]}"
               for group in by_name.values() if len(group) > 1]
    if clashes:
        raise ConfigError(f"{len(clashes)} output file(s) would be written from several inputs: {_some(clashes)} "
                          "(rename the inputs, or leave out --ext)")
    sources = {src.resolve() for src, _ in jobs}
    ids = file_ids(src for src, _ in jobs)
    hits = []
    for src, rel in jobs:
        dst = out_root / rel
        if dst.resolve() in sources or (os.path.lexists(dst) and set(file_ids([dst])) & set(ids)):
            hits.append(str(dst))
    if hits:
        raise ConfigError(f"{len(hits)} output file(s) would replace input files: {_some(hits)} "
                          "(give another --output folder)")


def _tiling(args: argparse.Namespace, translator) -> tuple[int, int, int] | None:
    """``(tile, overlap, multiple)`` for a checkpoint's generator, rounded up to its size multiple; None: no tiling."""
    model = getattr(translator, "model", None)
    given = args.tile if args.tile is not None else TILE
    if not given or model is None:
        return None
    m = max(1, int(model.size_multiple(args.direction)))
    given_overlap = args.tile_overlap if args.tile_overlap is not None else OVERLAP
    tile, overlap = -(-given // m) * m, -(-given_overlap // m) * m
    if 2 * overlap >= tile and args.tile is None and args.tile_overlap is None:
        tile = 4 * overlap  # defaults, for a generator with a large size multiple
    if 2 * overlap >= tile:
        raise ConfigError(f"--tile-overlap {given_overlap}: must be less than half of --tile {given} "
                          f"(rounded up to multiples of {m}, the generator's size multiple: {overlap}, {tile})")
    return tile, overlap, m


@torch.no_grad()
def _translate_tiled(translator, x: torch.Tensor, direction: str, tile: int, overlap: int, multiple: int) -> torch.Tensor:
    """One large image, padded to the size multiple, translated tile by tile (see :mod:`i2i.tiling`)."""
    from ..tiling import tiled
    from ..translator import pad_to_multiple

    padded, (h, w) = pad_to_multiple(x, multiple)
    out = tiled(lambda window: translator.translate_tensor(window, direction), padded, tile, overlap, multiple)
    return out[..., :h, :w].clamp(-1, 1).cpu()


def translate_folder(args: argparse.Namespace) -> int:
    from .. import load_translator
    from ..data.io import IMAGE_EXTENSIONS
    from ..signals import Interrupted, interrupt_on_signals
    from ..pipeline import Reading, translate_files

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_seed(args.seed)
    for flag, value in (("--workers", args.workers), ("--write-threads", args.write_threads)):
        if value < 0:
            raise ConfigError(f"{flag} must be >= 0, got {value}")
    for flag, value in (("--resize", args.resize), ("--max-pixels", args.max_pixels), ("--tile", args.tile or 0),
                        ("--tile-overlap", args.tile_overlap or 0), ("--tile-above", args.tile_above)):
        if value < 0:
            raise ConfigError(f"{flag} must be >= 0, got {value}")
    if args.resize:  # the network's input is N x N: within the pixel limit, as every image read
        from ..data.io import pixel_limit

        limit = pixel_limit(args.max_pixels)
        if args.resize ** 2 > limit:
            raise ConfigError(f"--resize {args.resize}: {args.resize} x {args.resize} pixels is more than the pixel "
                              f"limit ({limit}; --max-pixels or $I2I_MAX_PIXELS)")
    if args.method and args.checkpoint:
        raise ConfigError(f"--method {args.method} takes no --checkpoint")
    if not args.method and not args.checkpoint:
        raise ConfigError("--checkpoint is required (or --method dcp)")
    if args.html:
        check_gallery_dir(args.html, [("--input", args.input), ("--output", args.output)])
    out_root = check_output_dir(args.output, "--output")
    jobs = _inputs(Path(args.input), out_root)
    if args.ext:
        ext = "." + args.ext.lower().lstrip(".")
        if ext not in IMAGE_EXTENSIONS:
            raise I2IError(f"--ext {args.ext}: not an image format ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        jobs = [(src, rel.with_suffix(ext)) for src, rel in jobs]
    check_plan(jobs, out_root)
    todo = [(src, out_root / rel) for src, rel in jobs if args.overwrite or not (out_root / rel).exists()]
    skipped = len(jobs) - len(todo)
    if args.method == "dcp":
        from ..dehaze import DarkChannelPrior
        from ..runtime import select_device

        translator = DarkChannelPrior(device=select_device(args.device or "auto", key="--device"))
    else:
        translator = load_translator(args.checkpoint, device=args.device, weights=args.weights,
                                 imports=args.imports, trust_imports=args.trust_imports, arch=args.arch)
        torch.manual_seed(args.seed)
        try:
            translator.model.check_direction(args.direction)
        except ValueError as exc:
            if is_reference_file(args.checkpoint):
                raise I2IError(f"--direction {args.direction}: {args.checkpoint} holds one generator (A to B); for the "
                               "other direction give its other file (latest_net_G_B.pth)") from None
            raise I2IError(f"--direction {args.direction}: {exc}") from None
    if args.amp == "fp16" and translator.device.type != "cuda":
        raise ConfigError(f"--amp fp16 needs a CUDA device (running on {translator.device.type}); use bf16 or off")
    reading = Reading(translator.channels(args.direction)[0], args.max_pixels, args.resize, args.aligned,
                      args.direction)
    tiles = _tiling(args, translator)
    tiled = (lambda x: _translate_tiled(translator, x, args.direction, *tiles)) if tiles else None
    if todo and not (out_root / OUTPUT_MARK).exists():
        from ..utils import atomic_write_text

        atomic_write_text(out_root / OUTPUT_MARK, "images written by i2i-translate: a translation of a folder "
                                                  "above this one does not read them\n")
    unwritten: list[tuple[Path, str]] = []
    try:
        with interrupt_on_signals():  # written outputs stay whole, no temporary file stays behind
            failed, report = translate_files(translator, todo, reading, batch_size=args.batch_size,
                                          workers=args.workers, write_threads=args.write_threads, amp=args.amp,
                                          tile=tiles[0] if tiles else 0, tile_above=args.tile_above, tiled=tiled,
                                          unwritten=unwritten)
    except Interrupted as exc:
        exc.detail = (f"the outputs written into {out_root} are complete; run the command again to translate "
                      "the rest (existing outputs are kept)")
        raise

    done = len(todo) - len(failed) - len(unwritten)
    source = f" with {translator.checkpoint}" if getattr(translator, "checkpoint", "") else ""
    print(f"translated {done} image(s) into {out_root}{source}"
          + (f", kept {skipped} existing (use --overwrite)" if skipped else ""), file=sys.stderr)
    for name, mean in report.items():
        print(f"mean {name}: {mean:.4f}", file=sys.stderr)
    if args.html:
        from ..gallery import translation_gallery
        bad = {src for src, _ in failed + unwritten}
        page = translation_gallery(args.html, [(s, out_root / r) for s, r in jobs if s not in bad and (out_root / r).exists()], out_root)
        print(f"gallery: {page}", file=sys.stderr)
    for what, items in (("unreadable file(s)", failed), ("file(s) whose output could not be written", unwritten)):
        if items:
            print(f"skipped {len(items)} {what}:", file=sys.stderr)
            for src, why in items:  # a file name with a newline is quoted, so each file stays one line
                print(f"  {why if why.isprintable() else repr(why)}", file=sys.stderr)
    return 1 if failed or unwritten else 0


def main(argv: list[str] | None = None) -> int:
    return run(translate_folder, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
