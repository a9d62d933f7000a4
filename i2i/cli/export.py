"""``i2i-export``: write a checkpoint's generator as TorchScript or ONNX, or its translator as a safetensors folder.

``--format safetensors`` writes the folder ``--output`` (``config.yaml`` + ``model.safetensors``: the inference
weights alone, see :mod:`i2i.deploy`) that ``i2i-translate --checkpoint`` and :func:`i2i.load_translator` read
without unpickling anything; it is read back and compared with the checkpoint before the command succeeds.

The exported network is the bare generator in eval mode: input ``N x C x H x W`` float32
in [-1, 1] (RGB, or gray for 1-channel models), output the translation in [-1, 1].  Batch,
height and width are dynamic; height and width must be multiples of the generator's
``size_multiple`` (pad before, crop after, as :class:`i2i.translator.Translator` does).
The file records ``size_multiple``, the channels and the direction: ONNX as model metadata
(``i2i.*`` keys), TorchScript as the extra file ``i2i.json``.

After writing, the file is run on the batch it was traced with and on a second batch of
another batch size, height and width, and compared with PyTorch (ONNX with onnxruntime,
when it is installed): a generator whose exported form holds only at the traced size
(Python arithmetic on the input's size, frozen by tracing) is refused, nothing written.
Exit codes: 2 bad arguments, 1 unreadable checkpoint or a file that does not match.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError, I2IError
from .common import add_debug, add_import, add_trust_imports, run

TOLERANCE = 1e-4  #: largest accepted |exported - PyTorch| on the check batches


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-export", description="Export a checkpoint's generator to TorchScript or "
                                                               "ONNX, or its translator to a safetensors folder.")
    p.add_argument("--checkpoint", required=True, help="checkpoint .pt file or run folder (newest checkpoint)")
    p.add_argument("--format", required=True, choices=["torchscript", "onnx", "safetensors"])
    p.add_argument("--output", required=True, help="file to write (.pt for torchscript, .onnx for onnx), "
                                                   "or folder (safetensors)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                   help="the generator exported (safetensors: every direction is kept)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: the exporter's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--weights", default="ema", choices=["ema", "raw"],
                   help="ema: the averaged weights where the run kept them (train.ema), raw: the trained ones")
    add_import(p)
    add_trust_imports(p)
    add_debug(p)
    return p


def _examples(c_in: int, multiple: int) -> list[torch.Tensor]:
    """Check batches: the one traced, 2 images of 2 x 3 multiples (no size 1 or equal sides that an exporter
    could specialize on), and 1 image of another shape, at least 72 x 40 pixels (sizes computed from the
    input's, such as a share of its pixels, then differ from the traced batch's)."""
    g = torch.Generator().manual_seed(0)
    traced = torch.rand(2, c_in, 2 * multiple, 3 * multiple, generator=g) * 2 - 1
    h, w = multiple * max(3, -(-72 // multiple)), multiple * max(2, -(-40 // multiple))
    return [traced, torch.rand(1, c_in, h, w, generator=g) * 2 - 1]


def export_torchscript(gen: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict):
    """Trace ``gen`` on ``example`` into ``path``; returns the loaded file (a callable)."""
    with warnings.catch_warnings():  # trace deprecation and the size checks frozen as constants
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(gen, example)
        torch.jit.save(traced, str(path), _extra_files={"i2i.json": json.dumps(meta)})
        return torch.jit.load(str(path))


def export_onnx(gen: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict, opset: int | None):
    """Export ``gen`` into ``path``; returns a callable running the file in onnxruntime, or None without it."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (used by torch.onnx's exporter)
    except ImportError:
        raise I2IError("--format onnx needs the packages onnx and onnxscript: pip install onnx onnxscript") from None
    m = meta["size_multiple"]
    dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("h", min=1) * m, 3: torch.export.Dim("w", min=1) * m}
    kwargs = {"opset_version": opset} if opset else {}
    if opset is not None and not 1 <= opset <= onnx.defs.onnx_opset_version():
        raise ConfigError(f"--opset {opset}: ONNX opsets are 1 to {onnx.defs.onnx_opset_version()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL if opset else logging.NOTSET)  # a failed conversion is said below, once
        try:
            program = torch.onnx.export(gen, (example,), dynamo=True, input_names=["image"], output_names=["output"],
                                        dynamic_shapes=(dims,), verbose=False, **kwargs)
        finally:
            logging.disable(logging.NOTSET)
    model = program.model_proto
    written = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset and written != opset:
        raise ConfigError(f"--opset {opset}: the ONNX exporter cannot write this generator in opset {opset} "
                          f"(it wrote opset {written}); give a newer --opset, or leave it out; nothing written")
    for key, value in meta.items():
        model.metadata_props.add(key=f"i2i.{key}", value=str(value))
    onnx.save(model, str(path), format="protobuf")  # whatever the name (onnx would write text for .json, .txt)
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0])


def _checkpoint_file(source: Path) -> Path:
    """The file ``--checkpoint`` reads (a run folder's newest checkpoint; an exported folder's weights)."""
    from ..deploy import WEIGHTS, is_folder
    from ..checkpoint import resolve_checkpoint

    return source / WEIGHTS if is_folder(source) else resolve_checkpoint(source)


def export_folder(args: argparse.Namespace) -> int:
    """``--format safetensors``: the translator's config and inference weights as a folder, checked by reading it
    back (the same tensors, bit for bit)."""
    from .. import load_translator
    from ..deploy import WEIGHTS, inference_names, is_folder, load_folder, save_folder
    from .paths import check_apart, check_output_dir

    out = check_output_dir(args.output, "--output")
    source = Path(args.checkpoint)
    check_apart(out, "--output", [("--checkpoint", source), ("--checkpoint", _checkpoint_file(source))])
    if out.exists() and not args.overwrite:
        raise ConfigError(f"--output {out} exists (use --overwrite)")
    if out.exists() and any(out.iterdir()) and not is_folder(out):
        raise ConfigError(f"--output {out}: a folder that i2i-export did not write (no {WEIGHTS}); "
                          "give a new or empty folder")
    translator = load_translator(args.checkpoint, device="cpu", weights=args.weights,
                                 imports=args.imports, trust_imports=args.trust_imports)
    save_folder(translator, out, replace=True)
    _, model, *_ = load_folder(out, imports=args.imports, trust_imports=True)  # its config was just written here
    own, back = translator.model.state_dict(), model.state_dict()
    differ = [k for k in inference_names(model) if not torch.equal(back[k], own[k].cpu())]
    if differ:
        raise I2IError(f"{out}: read back, {differ[0]} differs from the checkpoint's")
    print(f"wrote {out} (safetensors: config.yaml + {WEIGHTS}, the {translator.cfg.model.name} translator's "
          f"{translator.weights} weights)", file=sys.stderr)
    return 0


def export(args: argparse.Namespace) -> int:
    from .. import load_translator
    from ..utils import atomic_path
    from .paths import check_apart, check_output_file

    if args.format == "safetensors":
        return export_folder(args)
    out = Path(args.output)
    if out.is_dir():
        raise ConfigError(f"--output {out} is a folder; give a file name")
    check_output_file(out, "--output")
    source = Path(args.checkpoint)
    check_apart(out, "--output", [("--checkpoint", source), ("--checkpoint", _checkpoint_file(source))])
    if out.exists() and not args.overwrite:
        raise ConfigError(f"--output {out} exists (use --overwrite)")
    translator = load_translator(args.checkpoint, device="cpu", weights=args.weights,
                                 imports=args.imports, trust_imports=args.trust_imports)
    try:
        gen = translator.model.generator(args.direction)
    except ValueError as exc:
        raise ConfigError(f"--direction {args.direction}: {exc}") from None
    if not translator.model.exports_images:
        raise ConfigError(f"--checkpoint {args.checkpoint}: a {translator.cfg.model.name} generator makes images from "
                          "latent vectors; its translation is an optimization, which i2i-export does not export")
    gen = copy.deepcopy(gen).eval().requires_grad_(False)
    c_in, c_out = translator.channels(args.direction)
    multiple = int(getattr(gen, "size_multiple", 1))
    meta = {"size_multiple": multiple, "in_channels": c_in, "out_channels": c_out, "direction": args.direction,
            "input_range": "[-1, 1]", "generator": type(gen).__name__}
    if translator.cfg.model.test_batch_stats:
        print("note: model.test_batch_stats is on; the exported generator runs in eval mode (running batch-norm "
              "statistics, no dropout), unlike i2i-translate", file=sys.stderr)
    examples = _examples(c_in, multiple)
    with torch.no_grad():
        with atomic_path(out) as tmp:
            if args.format == "torchscript":
                exported = export_torchscript(gen, examples[0], tmp, meta)
            else:
                exported = export_onnx(gen, examples[0], tmp, meta, args.opset)
            diff = 0.0
            for x in examples if exported is not None else []:
                diff = max(diff, float((exported(x) - gen(x)).abs().max()))
                if not diff <= TOLERANCE:
                    size = " x ".join(map(str, x.shape))
                    raise I2IError(f"exported {args.format} model differs from PyTorch by {diff:.2e} (> {TOLERANCE:g}) "
                                   f"on a check batch of {size}"
                                   + (" (not the size it was traced at: the generator's forward depends on the "
                                      "input size in a way the export froze)" if x is not examples[0] else "")
                                   + "; nothing written")
    check = f", max |{args.format} - torch| = {diff:.1e}" if exported is not None else " (onnxruntime absent: not run)"
    print(f"wrote {out} ({args.format}, {args.direction}, input N x {c_in} x H x W, H and W multiples of "
          f"{multiple}{check})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(export, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
