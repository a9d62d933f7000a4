"""``i2i-make-haze``: a paired dehazing training set from a folder of clear images.

For every clear image ``NAME`` (searched recursively; sub-folders are mirrored) it writes
``OUT/clear/NAME.png`` and ``--per-image`` hazy versions ``OUT/hazy/NAME_1.png`` ..
``NAME_N.png``, each with its own ``beta`` and airlight ``A`` drawn uniformly from the
given ranges (the RESIDE naming: read it back with ``data.kind: paired``,
``data.ab_dirs: ['hazy', 'clear']``, ``data.pair_regex: '^(.*)_\\d+$'``).  The drawn
parameters are recorded in ``OUT/haze.csv``.  The physics and the depth fallback used
without ``--depth`` are described in :mod:`i2i.data.haze`.

The draws of an image depend only on ``--seed`` and its relative path, so a rerun gives
the same files.  Existing outputs are kept unless ``--overwrite``; files are written
atomically.  Exit codes: 2 for bad arguments, 1 when some input could not be read.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import ConfigError, DataError
from .common import add_debug, check_seed, run

PARAMS_FILE = "haze.csv"
MAX_PER_IMAGE = 1000  #: hazy versions per clear image at most (each image's are planned in memory at once)
_FIELDS = ["hazy", "clear", "beta", "airlight", "depth"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-make-haze",
                                description="Synthesize hazy/clear training pairs with I = J t + A (1 - t), t = exp(-beta d).")
    p.add_argument("--input", required=True, help="folder of clear images (or one image)")
    p.add_argument("--output", required=True, help="output folder: hazy/, clear/ and haze.csv are written there")
    p.add_argument("--depth", default=None, metavar="DEPTH_DIR",
                   help="depth maps named like the images (image files or .npy), normalized per image to [0, 1]; "
                        "default: a vertical ramp, far at the top")
    p.add_argument("--beta", type=float, nargs="+", default=[0.6, 1.8], metavar="B",
                   help="scattering coefficient: a value or a range LOW HIGH (default 0.6 1.8)")
    p.add_argument("--airlight", type=float, nargs="+", default=[0.7, 1.0], metavar="A",
                   help="airlight gray level in [0, 1]: a value or a range LOW HIGH (default 0.7 1.0)")
    p.add_argument("--per-image", type=int, default=5, metavar="N",
                   help=f"hazy versions per clear image, 1 to {MAX_PER_IMAGE} (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the beta and airlight draws")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_debug(p)
    return p


def _range(values: list[float], flag: str, low: float, high: float | None) -> tuple[float, float]:
    if len(values) > 2:
        raise ConfigError(f"{flag}: give one value or a range LOW HIGH, got {len(values)} values")
    lo, hi = values[0], values[-1]
    if not np.isfinite([lo, hi]).all() or lo > hi:
        raise ConfigError(f"{flag} {lo:g} {hi:g}: expected LOW <= HIGH")
    if lo < low or (high is not None and hi > high):
        bounds = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ConfigError(f"{flag} {lo:g} {hi:g}: values must be {bounds}")
    return lo, hi


def _key(rel: Path) -> str:
    return rel.with_suffix("").as_posix()


def _list_inputs(path: Path) -> list[tuple[Path, Path]]:
    from ..data.io import is_image, list_images

    if path.is_file():
        if not is_image(path):
            raise ConfigError(f"--input {path}: not an image file")
        return [(path, Path(path.name))]
    if not path.is_dir():
        raise ConfigError(f"--input not found: {path}")
    jobs = [(p, p.relative_to(path)) for p in list_images(path)]
    if not jobs:
        raise DataError(f"no images in {path}")
    seen: dict[str, Path] = {}
    for src, rel in jobs:
        if _key(rel) in seen:
            raise DataError(f"{seen[_key(rel)]} and {src} would both become {_key(rel)}.png; rename one")
        seen[_key(rel)] = src
    return jobs


def _depth_maps(folder: Path, keys: list[str]) -> dict[str, Path]:
    from ..data.io import is_image

    if not folder.is_dir():
        raise ConfigError(f"--depth folder not found: {folder}")
    found = {_key(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
             if p.is_file() and (is_image(p) or p.suffix.lower() == ".npy")}
    missing = [k for k in keys if k not in found]
    if missing:
        some = ", ".join(missing[:5]) + (f" ... (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} image(s) have no depth map in {folder}: {some}")
    return {k: found[k] for k in keys}


def _read_depth(path: Path) -> np.ndarray:
    from ..data.io import read_image

    if path.suffix.lower() != ".npy":
        return read_image(path, 1)[:, :, 0].astype(np.float64)
    try:
        depth = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read depth map {path}: {exc}") from None
    depth = np.squeeze(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise DataError(f"depth map {path}: expected a 2-D numeric array, got shape {depth.shape}, {depth.dtype}")
    depth = depth.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(depth)))
    if bad:
        raise DataError(f"depth map {path}: {bad} value(s) are NaN or infinite")
    return depth


def _read_params(path: Path) -> dict[str, dict]:
    """The rows of an earlier run's parameter table at ``path`` (none if there is no file), keyed by hazy file."""
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a parameter table of i2i-make-haze ({exc}); move it away or give "
                        "another --output") from None
    return {r["hazy"]: r for r in rows if isinstance(r.get("hazy"), str) and r["hazy"]}


def _write_params(path: Path, table: dict[str, dict], rows: dict[str, dict]) -> None:
    """Merge ``rows`` (keyed by hazy file) into ``table``, the parameter table read from ``path``, and write it."""
    from ..utils import atomic_write_text

    table = {**table, **rows}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    for key in sorted(table):
        writer.writerow({k: table[key].get(k, "") for k in _FIELDS})
    atomic_write_text(path, out.getvalue())


def make_haze(args: argparse.Namespace) -> int:
    from ..data.haze import hazy_uint8, sample_parameters
    from ..data.io import read_image, write_image

    beta = _range(args.beta, "--beta", 0.0, None)
    airlight = _range(args.airlight, "--airlight", 0.0, 1.0)
    if not 1 <= args.per_image <= MAX_PER_IMAGE:
        raise ConfigError(f"--per-image must be 1 to {MAX_PER_IMAGE}, got {args.per_image}")
    check_seed(args.seed)
    from .paths import check_apart, check_output_dir

    src_root, out_root = Path(args.input), check_output_dir(args.output, "--output")
    check_apart(out_root, "--output", [("--input", src_root), ("--depth", args.depth)], writes_in=[out_root])
    jobs = _list_inputs(src_root)
    depths = _depth_maps(Path(args.depth), [_key(rel) for _, rel in jobs]) if args.depth else {}
    table = _read_params(out_root / PARAMS_FILE)  # before anything is written

    failed: list[str] = []
    rows: dict[str, dict] = {}
    written = kept = 0
    try:  # the rows of the files written so far are recorded even if this run is interrupted
        for src, rel in tqdm(jobs, desc="make-haze", unit="img", dynamic_ncols=True):
            key = _key(rel)
            rng = np.random.default_rng([args.seed, zlib.crc32(key.encode())])
            params = sample_parameters(rng, beta, airlight, args.per_image)
            clear_dst = out_root / "clear" / f"{key}.png"
            hazy_dst = [out_root / "hazy" / f"{key}_{k}.png" for k in range(1, args.per_image + 1)]
            todo = [p for p in [clear_dst, *hazy_dst] if args.overwrite or not p.exists()]
            kept += args.per_image + 1 - len(todo)
            if not todo:
                continue
            try:
                clear = read_image(src, 3)
                depth = _read_depth(depths[key]) if key in depths else None
                if depth is not None and depth.shape != clear.shape[:2]:
                    raise DataError(f"depth map {depths[key]} is {depth.shape[0]}x{depth.shape[1]}, "
                                    f"image {src} is {clear.shape[0]}x{clear.shape[1]}")
            except DataError as exc:
                failed.append(str(exc))
                continue
            if clear_dst in todo:
                write_image(clear_dst, clear)
                written += 1
            for dst, (b_k, a_k) in zip(hazy_dst, params):
                if dst in todo:
                    write_image(dst, hazy_uint8(clear, depth, b_k, a_k))
                    written += 1
                    rows[dst.relative_to(out_root).as_posix()] = {
                        "hazy": dst.relative_to(out_root).as_posix(),
                        "clear": clear_dst.relative_to(out_root).as_posix(),
                        "beta": f"{b_k:.6f}", "airlight": f"{a_k:.6f}",
                        "depth": str(depths[key]) if key in depths else "gradient",
                    }
    finally:
        if rows:
            _write_params(out_root / PARAMS_FILE, table, rows)
    print(f"wrote {written} file(s) into {out_root}" + (f", kept {kept} existing (use --overwrite)" if kept else ""),
          file=sys.stderr)
    if failed:
        print(f"skipped {len(failed)} unreadable input(s):", file=sys.stderr)
        for why in failed:
            print(f"  {why}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(make_haze, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
