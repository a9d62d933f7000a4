#!/usr/bin/env python
"""Check i2i's GPU paths in one command: a table of cells (ok, FAIL, skipped) and one JSON file.

    python tools/gpu_check.py                # on a CUDA machine
    python tools/gpu_check.py --dry-run      # the same cells on the CPU at 32 px with tiny networks

Cells (a cell starts only while the time budget lasts: ``--budget-min``, 7 minutes by default):

* ``train/T/P/M/L``: every translator T of the registry x precision P (fp32, bf16, fp16) x
  eager or compiled M x memory layout L (nchw, channels_last): ``--steps`` training steps
  (``Trainer.train_step``) at 256 px with small networks.  The losses are finite; an fp32
  compiled cell's equal its eager twin's within a tolerance; one more step runs under
  ``torch.cuda.set_sync_debug_mode("error")``, and a host synchronisation in it fails the cell
  with the line that waited (``sync`` in the JSON).
* ``resume/T``: N steps straight against N/2, then ``i2i-train --resume`` to N: equal losses.
* ``translate/T``: ``i2i-translate --amp bf16`` of a small folder (the fp32 eager cell's checkpoint).
* ``export/T``: ``i2i-export --format onnx`` (which compares on the CPU), then the file in
  onnxruntime against the generator on the device (TF32 off).
* ``tiled``: an image above the tiling threshold translated tiled and untiled by a generator
  without global statistics: equal up to 8-bit rounding.
* ``bench/CASE/SETTING/...``: ``tools/benchmark.py`` for cyclegan_256 and pix2pix_256, fp32
  eager against bf16 + channels-last + compile, at batch 1 and at the largest batch that fits
  (doubled until out of memory, at most ``--bench-max-batch``, found with eager steps):
  images/s and fraction_of_peak of its JSON.
* ``distributed``: with 2 or more GPUs, ``pytest tests/test_distributed.py`` on them.

Order: the eager train cells, resume, translate, export, tiled, bench, distributed, then the
compiled train cells (the slowest: a compilation each), fp32 NCHW first (compared with eager),
then bf16 channels-last, fp32 channels-last and the rest; ``--compile-cells`` caps them, a
larger ``--budget-min`` runs more of them.

The dry run skips what needs CUDA (fp16, the host-sync step, several GPUs) and says so.
Exit code 0 when every cell that ran passed, 1 otherwise, 2 for bad arguments or no CUDA
device without ``--dry-run``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's i2i (gpu_cells and benchmark are beside this file)
    sys.path.insert(0, str(ROOT))

import benchmark  # noqa: E402
import gpu_cells  # noqa: E402
import torch  # noqa: E402

LAYOUTS = ("nchw", "channels_last")
#: compiled cells run in this order of (precision, layout): compared with eager, the fast setting, then the rest
COMPILE_FIRST = [("fp32", "nchw"), ("bf16", "channels_last"), ("fp32", "channels_last")]
BENCH_CASES = "cyclegan_256,pix2pix_256"
BENCH_SETTINGS = "fp32-eager,bf16-cl-compile"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="run on the CPU at 32 px with tiny networks")
    p.add_argument("--out", help="the JSON file (default: results/gpu_check.json; dry run: results/gpu_check_dry_run.json)")
    p.add_argument("--only", default="", metavar="T1,T2", help="these translators only (default: every registered one)")
    p.add_argument("--steps", type=int, default=None, help="training steps of a cell (default: 4; dry run: 2)")
    p.add_argument("--compile-cells", type=int, default=None, metavar="N", help="run at most N compiled train cells")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend of the train cells (aot_eager: graph capture and AOT autograd without "
                        "code generation, quick on a CPU)")
    p.add_argument("--bench-cases", default=BENCH_CASES, help="tools/benchmark.py cases, comma-separated ('': none)")
    p.add_argument("--bench-settings", default=BENCH_SETTINGS, help="benchmark settings, comma-separated ('': none)")
    p.add_argument("--bench-max-batch", type=int, default=None, metavar="N",
                   help="largest benchmark batch tried (default: 64; dry run: 2)")
    p.add_argument("--budget-min", type=float, default=7.0,
                   help="start no cell after this many minutes (the cell running then finishes)")
    return p


def check_args(args: argparse.Namespace, translators: list[str]) -> str | None:
    """The one-line error for a bad argument, or None."""
    for flag, names, known in (("--only", args.only, translators), ("--bench-cases", args.bench_cases, benchmark.CASES),
                               ("--bench-settings", args.bench_settings, gpu_cells.BENCH_SETTINGS)):
        unknown = [n for n in names.split(",") if n and n not in known]
        if unknown:
            return f"{flag}: unknown {', '.join(unknown)}; known: {', '.join(known)}"
    for flag, value, least in (("--steps", args.steps, 2), ("--compile-cells", args.compile_cells, 0),
                               ("--bench-max-batch", args.bench_max_batch, 1)):
        if value is not None and value < least:
            return f"{flag} must be >= {least}, got {value}"
    if args.compile_backend not in torch._dynamo.list_backends(exclude_tags=()):
        return (f"--compile-backend: unknown {args.compile_backend}; known: "
                f"{', '.join(torch._dynamo.list_backends(exclude_tags=()))}")
    if not args.budget_min > 0:
        return f"--budget-min must be > 0, got {args.budget_min}"
    return None


class Runner:
    """Runs cells within the time budget, prints a row per cell as it ends, keeps them for the JSON."""

    def __init__(self, budget_min: float) -> None:
        self.budget_min, self.deadline = budget_min, time.monotonic() + 60 * budget_min
        self.cells: list[dict] = []

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def skip(self, name: str, why: str) -> None:
        self.record(name, "skipped", 0.0, why, {})

    def run(self, name: str, fn, *args) -> None:
        if self.left_s() <= 0:
            return self.skip(name, f"time budget spent (--budget-min {self.budget_min:g})")
        start, err = time.perf_counter(), io.StringIO()
        status, extra = "ok", {}
        try:
            with contextlib.redirect_stderr(err), gpu_cells.kept_torch_flags():
                detail, extra = fn(*args)
        except gpu_cells.Skip as exc:
            status, detail = "skipped", str(exc)
        except gpu_cells.Fail as exc:
            status, detail, extra = "FAIL", str(exc), exc.extra
        except Exception as exc:  # a bug or an error of torch: the cell fails, the check goes on
            status, detail = "FAIL", gpu_cells.first_line(exc)
        finally:
            gpu_cells.release()
        if status == "FAIL":  # the one-line error or warning a command printed says most
            said = [line for line in err.getvalue().splitlines() if line.startswith(("error:", "warning:"))]
            detail += f" [{said[-1][:200]}]" if said else ""
        self.record(name, status, time.perf_counter() - start, detail, extra)

    def record(self, name: str, status: str, seconds: float, detail: str, extra: dict) -> None:
        self.cells.append({"cell": name, "status": status, "seconds": round(seconds, 2), "detail": detail, **extra})
        print(f"{name:<42} {status:<7} {seconds:7.1f}  {detail}", flush=True)


def machine(dry: bool) -> dict:
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"device": "cpu (dry run)" if dry else torch.cuda.get_device_name(0), "gpus": gpus,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "python": platform.python_version(), "platform": platform.platform()}


def compile_order(cell: tuple) -> int:
    key = (cell[1], cell[3])
    return COMPILE_FIRST.index(key) if key in COMPILE_FIRST else len(COMPILE_FIRST)


def run_cells(run: Runner, work: gpu_cells.Work, translators: list[str], args: argparse.Namespace) -> None:
    eager, compiled = ([(t, p, mode, layout) for t in translators for p in gpu_cells.PRECISIONS for layout in LAYOUTS]
                       for mode in ("eager", "compile"))
    compiled.sort(key=compile_order)  # stable: translators in registry order within each setting
    cap = len(compiled) if args.compile_cells is None else args.compile_cells
    runnable = [c for c in compiled if not (work.dry and c[1] == "fp16")]  # fp16 cells skip at once, count none
    capped = set(runnable[cap:])

    def train_cells(cells):
        for c in cells:
            name = "train/" + "/".join(c)
            if work.dry and c[1] == "fp16":
                run.skip(name, "fp16 needs CUDA")
            elif c in capped:
                run.skip(name, f"--compile-cells {cap} reached")
            else:
                run.run(name, gpu_cells.train, work, *c)

    train_cells(eager)
    for t in translators:
        run.run(f"resume/{t}", gpu_cells.resume, work, t)
    for t in translators:
        run.run(f"translate/{t}", gpu_cells.translate, work, t)
    for t in translators:
        run.run(f"export/{t}", gpu_cells.export, work, t)
    run.run("tiled", gpu_cells.tiled, work)
    for case in [c for c in args.bench_cases.split(",") if c]:
        for setting in [s for s in args.bench_settings.split(",") if s]:
            run.run(f"bench/{case}/{setting}/batch-1", gpu_cells.bench, work, case, setting, False)
            run.run(f"bench/{case}/{setting}/largest", gpu_cells.bench, work, case, setting, True)
    gpus = 0 if work.dry else torch.cuda.device_count()
    if gpus < 2:
        run.skip("distributed", "needs 2 or more GPUs (dry run)" if work.dry else f"{gpus} GPU")
    else:
        run.run("distributed", gpu_cells.distributed, gpus, max(60.0, run.left_s() + 120))
    train_cells(compiled)

def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from i2i.registry import MODELS

    translators = MODELS.names()
    error = check_args(args, translators)
    if error is None and not args.dry_run and not torch.cuda.is_available():
        error = "no CUDA device is available to torch here; --dry-run runs the same check on the CPU at tiny sizes"
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from i2i.utils import atomic_write_text

    out = Path(args.out or ROOT / "results" / ("gpu_check_dry_run.json" if args.dry_run else "gpu_check.json"))
    info = machine(args.dry_run)
    gpus = "" if args.dry_run else f" x {info['gpus']}"
    print(f"gpu_check{' --dry-run' if args.dry_run else ''}: {info['device']}{gpus}, torch {info['torch']}, "
          f"CUDA {info['cuda']}, cuDNN {info['cudnn']}, Python {info['python']}", flush=True)
    import torch._inductor.config as inductor_config
    from i2i.engine import speed

    inductor_config.fallback_random = True  # compiled dropout draws eager's random numbers
    speed.BACKEND = args.compile_backend
    run = Runner(args.budget_min)
    steps = args.steps or (2 if args.dry_run else 4)
    bench_max = args.bench_max_batch or (2 if args.dry_run else 64)
    interrupted = False
    try:
        with tempfile.TemporaryDirectory(prefix="i2i-gpu-check-") as tmp:
            work = gpu_cells.Work(Path(tmp), args.dry_run, steps, bench_max)
            run_cells(run, work, [t for t in args.only.split(",") if t] or translators, args)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted", file=sys.stderr)
    finally:
        counts = {s: sum(c["status"] == s for c in run.cells) for s in ("ok", "FAIL", "skipped")}
        options = {k: v for k, v in vars(args).items() if k != "out"} | {"steps": steps, "bench_max_batch": bench_max}
        atomic_write_text(out, json.dumps({"machine": info, "options": options, "summary": counts,
                                           "cells": run.cells}, indent=2) + "\n")
        print(f"{counts['ok']} ok, {counts['FAIL']} FAIL, {counts['skipped']} skipped; JSON: {out}", flush=True)
    return 130 if interrupted else 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
