"""``i2i-eval``: score a folder of generated images against a folder of targets.

Files are found recursively and keyed by their path relative to the folder without
extension (the stem, for flat folders).  Paired metrics (psnr, ssim, psnr_y, ssim_y,
seg) need every pred to have a target of the same key and size and vice versa;
otherwise the run stops with one line listing the unmatched keys (exit 2).  Set
metrics (fid, kid) compare the whole pred set with the whole target set, which may
then differ in number; ``is`` needs no target.

``seg`` maps pred colours to the nearest ``--palette`` colour; the ground truth is the
class-index PNGs of ``--labels`` if given (values outside the palette's index range,
and ``--ignore-index``, are not counted), else the target colour images mapped the
same way.  Results go to stdout as a table and, with ``--json``, to a file written
atomically (non-finite values as the strings "inf", "-inf", "nan").

``--html DIR`` also writes a page of the images (``--input``, pred, target, and the
``--labels`` in palette colours) with each image's own psnr/ssim/seg scores, sortable
and filterable (see :mod:`i2i.gallery`); inputs are paired with preds by key.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import metrics as _metrics  # noqa: F401 - registers the metrics
from ..errors import ConfigError, DataError
from ..registry import METRICS, RegistryError
from ..runtime import select_device
from .common import add_debug, add_import, add_offline, run
from .paths import check_apart, check_gallery_dir, check_output_file, inside


class PairingError(DataError):
    exit_code = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-eval", description="Score generated images against targets.")
    p.add_argument("--pred", required=True, help="folder of generated images")
    p.add_argument("--target", help="folder of target / reference images")
    p.add_argument("--metrics", default="fid,kid,psnr,ssim",
                   help=f"comma-separated, from: {', '.join(METRICS.names())} (default: %(default)s)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--palette", help="palette file (lines 'index R G B') for seg")
    p.add_argument("--labels", help="folder of ground-truth class-index PNGs for seg")
    p.add_argument("--ignore-index", type=int, help="seg: ground-truth label value not counted (e.g. 0 or 255)")
    p.add_argument("--max-pixels", type=int, default=0, metavar="N",
                   help="stop at an image with more than N pixels, before decoding it (default: $I2I_MAX_PIXELS, "
                        "else 67108864 = 8192 x 8192)")
    p.add_argument("--html", metavar="DIR", help="write a page of the images and their per-image scores into DIR")
    p.add_argument("--input", help="with --html: folder of the inputs the preds were translated from (paired by key)")
    p.add_argument("--inception-weights", help="FID Inception weights file (else $I2I_INCEPTION_WEIGHTS, the torch hub cache, "
                                                  "then a download into it)")
    add_import(p)
    add_offline(p)
    add_debug(p)
    return p


def keyed_images(root: str | Path | None, flag: str) -> dict[str, Path]:
    """``{relative path without extension: file}`` of the images under ``root``."""
    from ..data.io import list_images

    if root is None:
        raise ConfigError(f"{flag} is required for the selected metrics")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{flag} folder not found: {root}")
    files: dict[str, Path] = {}
    for path in list_images(root):
        key = path.relative_to(root).with_suffix("").as_posix()
        if key in files:
            raise DataError(f"{flag}: two images share the name {key!r}: {files[key].name}, {path.name}")
        files[key] = path
    if not files:
        raise DataError(f"{flag} folder {root} holds no images")
    return files


def pair(pred: dict[str, Path], target: dict[str, Path], flag: str) -> list[tuple[Path, Path]]:
    only_pred, only_target = sorted(set(pred) - set(target)), sorted(set(target) - set(pred))
    if only_pred or only_target:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        parts = [f"{len(only_pred)} without partner in {flag}: {show(only_pred)}" if only_pred else "",
                 f"{len(only_target)} in {flag} without pred: {show(only_target)}" if only_target else ""]
        raise PairingError("unpaired files: " + "; ".join(p for p in parts if p))
    return [(pred[k], target[k]) for k in sorted(pred)]


def load_rgb(path: Path, max_pixels: int | None = None) -> torch.Tensor:
    from ..data.io import image_to_tensor, read_image

    return image_to_tensor(read_image(path, channels=3, max_pixels=max_pixels))


def load_labels(path: Path, max_pixels: int | None = None) -> torch.Tensor:
    from PIL import Image

    from ..data.io import image_size

    image_size(path, max_pixels)  # DataError if unreadable or over the pixel limit, before anything is decoded
    try:
        with Image.open(path) as im:
            arr = np.array(im)
    except Exception as exc:  # anything PIL's decoder trips on
        raise DataError(f"cannot read label map {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if arr.ndim != 2:
        raise DataError(f"label map {path} is not a single-channel class-index image (shape {arr.shape})")
    return torch.from_numpy(arr.astype(np.int64))


def batches(items: list, size: int, loaders: tuple):
    """Yield stacked batches of consecutive items whose tensors share a shape."""
    group: list[tuple[torch.Tensor, ...]] = []
    for item in items:
        tensors = tuple(load(p) for load, p in zip(loaders, item))
        if len(tensors) == 2 and tensors[0].shape[-2:] != tensors[1].shape[-2:]:
            raise DataError(f"size mismatch: {item[0]} is {tuple(tensors[0].shape[-2:])}, {item[1]} is {tuple(tensors[1].shape[-2:])}")
        if group and (len(group) == size or group[0][0].shape != tensors[0].shape):
            yield tuple(torch.stack(t) for t in zip(*group))
            group = []
        group.append(tensors)
    if group:
        yield tuple(torch.stack(t) for t in zip(*group))


def metric_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--metrics is empty")
    for name in names:
        try:
            METRICS.get(name)
        except RegistryError as exc:
            raise ConfigError(f"--metrics: {exc}") from None
    return list(dict.fromkeys(names))


def _feed(suite, items, loaders, args, desc: str, update, scores: dict | None = None) -> None:
    """Feed ``items`` in batches to ``update``; per-image values it returns go to ``scores[item[0]]``."""
    done = 0
    with tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr, disable=None) as bar:
        for batch in batches(items, args.batch_size, loaders):
            per_image = update(*batch) or {}
            n = len(batch[0])
            if scores is not None:
                for i, item in enumerate(items[done:done + n]):
                    scores.setdefault(item[0], {}).update({k: float(v[i]) for k, v in per_image.items()})
            done += n
            bar.update(n)


def evaluate(args: argparse.Namespace) -> int:
    from ..metrics import MetricSuite, read_palette

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_pixels < 0:
        raise ConfigError(f"--max-pixels must be >= 0, got {args.max_pixels}")
    limit = args.max_pixels or None
    rgb, label_map = partial(load_rgb, max_pixels=limit), partial(load_labels, max_pixels=limit)
    names = metric_names(args.metrics)
    palette = read_palette(args.palette) if args.palette else None
    label_names = [n for n in names if args.labels and "palette" in METRICS.parameters(n)]
    main_names = [n for n in names if n not in label_names]
    device = select_device(args.device or "auto", key="--device")
    opts = {n: {"ignore_index": args.ignore_index} for n in names
            if args.ignore_index is not None and "ignore_index" in METRICS.parameters(n)}
    if args.input and not args.html:
        raise ConfigError("--input is only used with --html")
    inputs = [("--pred", args.pred), ("--target", args.target), ("--labels", args.labels), ("--input", args.input),
              ("--palette", args.palette), ("--inception-weights", args.inception_weights)]
    if args.json and args.html and inside(Path(args.json), Path(args.html)):  # the page's folder holds the page only
        raise ConfigError(f"--json {args.json}: lies inside the --html folder {args.html}, where the page is written; "
                          "give a path outside it")
    if args.json:
        check_results_file(check_apart(check_output_file(args.json, "--json"), "--json", inputs))
    if args.html:
        check_gallery_dir(args.html, inputs)
    pred = keyed_images(args.pred, "--pred")
    inputs = keyed_images(args.input, "--input") if args.input else {}
    if inputs:  # every pred needs its input; inputs without a pred are left out
        pair(pred, {k: v for k, v in inputs.items() if k in pred}, "--input")
    results: dict[str, float] = {}
    counts = {"pred": len(pred)}
    target: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    scores: dict[Path, dict[str, float]] | None = {} if args.html else None

    if main_names:
        kinds = {getattr(METRICS.get(n), "TARGET", "none") for n in main_names}
        target = keyed_images(args.target, "--target") if kinds - {"none"} else {}
        counts["target"] = len(target)
        suite = MetricSuite(main_names, device=device, palette=palette, inception_weights=args.inception_weights,
                            **{n: o for n, o in opts.items() if n in main_names})
        desc = "features" if suite.needs_features else "scoring"
        if "paired" in kinds:
            _feed(suite, pair(pred, target, "--target"), (rgb, rgb), args, desc, suite.update, scores)
        else:
            _feed(suite, [(p,) for p in pred.values()], (rgb,), args, desc + " (pred)", suite.update)
            if target:
                _feed(suite, [(p,) for p in target.values()], (rgb,), args, desc + " (target)", suite.update_reference)
        results.update(suite.compute())
    if label_names:
        labels = keyed_images(args.labels, "--labels")
        counts["labels"] = len(labels)
        suite = MetricSuite(label_names, device=device, palette=palette, **{n: o for n, o in opts.items() if n in label_names})
        _feed(suite, pair(pred, labels, "--labels"), (rgb, label_map), args, "segmentation", suite.update, scores)
        results.update(suite.compute())

    print(format_table(results))
    if args.json:
        write_json(args.json, results, args, counts)
    if args.html:
        page = write_html(args, results, pred, inputs, target, labels, scores, palette, label_map)
        print(f"gallery: {page}", file=sys.stderr)
    return 0


def write_html(args, results, pred, inputs, target, labels, scores, palette, label_map=load_labels) -> Path:
    """The gallery page: one row per pred with its input, target and label map, and its own scores."""
    from ..gallery import write_gallery

    lut = None
    if labels and palette:
        lut = np.zeros((max(256, max(palette) + 1), 3), np.uint8)
        for index, rgb in palette.items():
            lut[index] = rgb

    def rows():
        for key, path in sorted(pred.items()):
            images = {"input": inputs.get(key), "output": path, "target": target.get(key)}
            if lut is not None and key in labels:
                images["labels"] = lut[np.clip(label_map(labels[key]).numpy(), 0, len(lut) - 1)]
            yield {"name": key, "images": images, "scores": scores.get(path, {})}

    columns = [c for c, used in [("input", inputs), ("output", True), ("target", target), ("labels", lut is not None)] if used]
    info = {flag: getattr(args, flag) for flag in ("pred", "target", "labels", "input") if getattr(args, flag)}
    return write_gallery(args.html, rows(), summary=results, columns=columns, title="i2i-eval", info=info)


def format_table(results: dict[str, float]) -> str:
    width = max([len("metric")] + [len(k) for k in results])
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{k:<{width}}  {v:.6g}" for k, v in results.items()]
    return "\n".join(lines)


def _jsonable(v: float):
    return v if math.isfinite(v) else str(v)


def check_results_file(path: Path) -> None:
    """An existing ``--json`` file is replaced only if it is an earlier results file of i2i-eval."""
    if not path.exists():
        return
    try:
        doc = json.loads(path.read_text()) if path.stat().st_size < 1 << 20 else None
    except (OSError, ValueError):
        doc = None
    if not (isinstance(doc, dict) and isinstance(doc.get("metrics"), dict) and "counts" in doc):
        raise ConfigError(f"--json {path}: exists and is not a results file of i2i-eval; give a new file name")


def write_json(path: str, results: dict[str, float], args: argparse.Namespace, counts: dict[str, int]) -> None:
    from ..utils import atomic_write_text

    doc = {
        "metrics": {k: _jsonable(v) for k, v in results.items()},
        "pred": str(args.pred), "target": args.target, "labels": args.labels, "palette": args.palette,
        "counts": counts,
        "settings": {"pixels": "uint8, data range 255", "ssim": "gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03",
                     "inception": "FID Inception-v3 (TF 2015-12-05), uint8 input, TF1 bilinear resize to 299"},
    }
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(evaluate, args)


if __name__ == "__main__":
    sys.exit(main())
