#!/usr/bin/env python
"""Training and translation speed and peak memory of the canonical translators, as JSON.

Each case runs in a fresh process on its canonical config (full-size networks), with
the data root, image size, batch size, threads and the speed options overridden.
Training (the default) reports

* ``sec_per_it``, ``iterations_per_s``, ``images_per_s``: median wall time of a training
  iteration after ``--warmup`` ones, the wait for the loader's next batch included,
  and ``step_only_sec``: the same without that wait;
* ``loader_batches_per_s``: the training DataLoader alone (same workers, no training),
  beside ``iterations_per_s``;
* ``peak_rss_gb`` (the largest of the process and its loader workers, GiB) and, on
  CUDA, ``cuda_peak_gb`` (torch's peak allocation);
* ``warmup_s``: the warm-up iterations together (compilation included);
* ``flop_per_step`` and ``tflop_per_image``: the dense work of one training step (matrix
  products and convolutions, forward and backward), counted by torch's FLOP counter on one
  more step run eagerly, and ``tflops_achieved``: that work over ``step_only_sec``; with a
  peak (``--peak-tflops``, or on a GPU of :data:`BF16_PEAK_TFLOPS` its dense bf16 peak),
  ``fraction_of_peak``.

``--translate`` instead writes ``--images`` validation images of the case to JPEG files and
reports ``end_to_end_images_per_s``, files in to files out through i2i-translate's
pipeline (decoding workers, batches, writer threads; :mod:`i2i.pipeline`) with the
model loaded, against ``forward_images_per_s``, the network alone on batches of the
same size; and ``command_s``, the whole ``i2i-translate`` command on those files
(start-up and checkpoint loading included; ``load_s``: the loading alone).

Comparisons with other implementations are measured side by side on the same machine
with ``../shared/bench/side_by_side.sh``, not stored here.

    python tools/benchmark.py --cases cyclegan_128 --steps 8 --amp bf16 --compile
    python tools/benchmark.py --cases pix2pix_256 --translate --batch-size 4 --images 32
    python tools/benchmark.py --device cuda --cases cyclegan_256 --channels-last --compile --amp bf16
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACADES = "../shared/data/facades"
CYCLE = {"config": "configs/cyclegan_horse2zebra.yaml", "data": "datasets/facades_unpaired"}  # tools/split_aligned.py
PIX = {"config": "configs/pix2pix_facades.yaml", "data": FACADES}
CASES = {
    "cyclegan_128": {**CYCLE, "size": (143, 128)},
    "cyclegan_128_6blocks": {**CYCLE, "size": (143, 128), "set": ["nets.G.name=resnet_6blocks"]},
    "cyclegan_256": {**CYCLE, "size": (286, 256)},
    "pix2pix_256": {**PIX, "size": (286, 256)},
    "cut_128": {"config": "configs/cut_horse2zebra.yaml", "data": CYCLE["data"], "size": (143, 128)},
    "fastcut_128": {"config": "configs/fastcut_horse2zebra.yaml", "data": CYCLE["data"], "size": (143, 128)},
}


def overrides(name: str, args: argparse.Namespace, out_dir: str) -> list[str]:
    case = CASES[name]
    data = args.data or (case["data"] if (ROOT / case["data"]).is_dir() else "builtin:shapes")
    load, crop = case["size"]
    sets = case.get("set", []) + [
        f"data.root={data}", f"data.load_size={load}", f"data.crop_size={crop}", f"data.batch_size={args.batch_size}",
        f"train.threads={args.threads}", f"train.device={args.device}", f"train.amp={args.amp}",
        f"train.compile={str(args.compile).lower()}", f"train.compile_mode={args.compile_mode}",
        f"train.out_dir={out_dir}", "train.name=bench",
        "train.checkpoint_every=1000000", "log.sample_every=1000000", "log.tensorboard=false", "log.progress=false",
    ]
    if args.workers is not None:
        sets.append(f"data.num_workers={args.workers}")
    if args.channels_last is not None:  # else the config's layout
        sets.append(f"train.channels_last={str(args.channels_last).lower()}")
    return sets + args.set


#: dense bf16 tensor-core peak in TFLOP/s (no sparsity) of GPUs, by a part of their name; the first match
#: counts (vendor datasheets: H100 SXM and H200 SXM 989.4, H100 NVL and H200 NVL 835.6, H100 PCIe 756.5, A100 312)
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.5), ("H100 NVL", 835.6), ("H200 NVL", 835.6), ("H100", 989.4),
                    ("H200", 989.4), ("A100", 312.0))


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named ``device_name`` (``torch.cuda.get_device_name``), if known."""
    return next((peak for part, peak in BF16_PEAK_TFLOPS if part in device_name), None)


def count_flops(fn, *args, **kwargs) -> tuple[int, object]:
    """``(FLOPs, result)`` of ``fn(*args, **kwargs)``: matrix products and convolutions, backward included."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn(*args, **kwargs)
    return counter.get_total_flops(), out


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def step_work(trainer, batch, seconds: float, batch_size: int, peak: float | None) -> dict:
    """The dense work of one more training step (run eagerly: the counter does not see into compiled
    graphs) and the rate ``seconds`` per step gives it."""
    from i2i.engine import speed

    if trainer.compiled:
        speed.eager_networks(speed.networks(trainer.model, trainer.model.optim_groups()))
    flops, _ = count_flops(trainer.train_step, batch)
    achieved = flops / seconds / 1e12
    out = {"flop_per_step": flops, "tflop_per_image": _sig(flops / 1e12 / batch_size),
           "tflops_achieved": _sig(achieved)}
    if peak:
        out.update(peak_tflops=peak, fraction_of_peak=_sig(achieved / peak))
    return out


def cuda_peak(device) -> dict:
    import torch

    return {"cuda_peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3)} if device.type == "cuda" else {}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_training(name: str, args: argparse.Namespace, tmp: str) -> dict:
    import torch

    from i2i.configure import load_config
    from i2i.engine.trainer import Trainer

    cfg = load_config(ROOT / CASES[name]["config"], overrides(name, args, tmp))
    trainer = Trainer(cfg, Path(tmp) / "bench")
    device, loader = trainer.device, trainer.loader

    def batches():
        while True:
            yield from loader

    # the loader alone: batches per second once its workers run (the first batch is not counted)
    it = batches()
    next(it)
    n = args.warmup + args.steps
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    loader_rate = n / (time.perf_counter() - t0)
    del it

    it = batches()
    total, step_only, cpu = [], [], []
    last = time.perf_counter()
    for i in range(n):
        batch = next(it)
        start, cpu_start = time.perf_counter(), time.process_time()
        logs, out = trainer.train_step(batch)
        trainer.step += 1
        float(sum(v.float() for v in logs.values()))  # the step's work is done (asynchronous devices)
        sync(device)
        end = time.perf_counter()
        cpu.append(time.process_time() - cpu_start)
        del out
        total.append(end - last)
        step_only.append(end - start)
        last = end
    sec = statistics.median(total[args.warmup:])
    step_sec = statistics.median(step_only[args.warmup:])
    peak = args.peak_tflops or (bf16_peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None)
    work = step_work(trainer, batch, step_sec, cfg.data.batch_size, peak)
    return {
        "sec_per_it": round(sec, 4),
        "iterations_per_s": round(1 / sec, 3),
        "images_per_s": round(cfg.data.batch_size / sec, 3),
        "step_only_sec": round(step_sec, 4),
        "step_cpu_sec": round(statistics.median(cpu[args.warmup:]), 4),
        "loader_batches_per_s": round(loader_rate, 2),
        "loader_workers": cfg.data.num_workers,
        "warmup_s": round(sum(total[:args.warmup]), 2),
        "steps_timed": args.steps,
        "batch_size": cfg.data.batch_size,
        "channels_last": cfg.train.channels_last,
        "data": cfg.data.root,
        "compile_failed": bool(trainer.compiled and trainer.compiled["failed"]),
        **cuda_peak(device),
        **work,
    }


def bench_translate(name: str, args: argparse.Namespace, tmp: str) -> dict:
    import torch

    from i2i import load_translator
    from i2i.cli.translate import main as translate_main
    from i2i.configure import load_config
    from i2i.data import build_dataset
    from i2i.data.io import tensor_to_image, write_image
    from i2i.runtime import autocast
    from i2i.engine.trainer import Trainer
    from i2i.pipeline import Reading, translate_files

    cfg = load_config(ROOT / CASES[name]["config"], overrides(name, args, tmp))
    checkpoint = Trainer(cfg, Path(tmp) / "bench").save()  # initial weights: speed does not depend on them
    dataset = build_dataset(cfg.data, train=False)
    inputs = Path(tmp) / "inputs"
    for i in range(args.images):
        write_image(inputs / f"{i:05d}.jpg", tensor_to_image(dataset[i % len(dataset)]["A"]))

    start = time.perf_counter()
    translator = load_translator(checkpoint, device=args.device)
    load_s = time.perf_counter() - start
    device = translator.device
    x = torch.stack([dataset[i % len(dataset)]["A"] for i in range(args.batch_size)])
    rounds = math.ceil(args.images / args.batch_size)
    with autocast(device, args.amp):
        translator.translate_tensor(x, "AtoB")  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(rounds):
            translator.translate_tensor(x, "AtoB").float().cpu()
        sync(device)
    forward = rounds * args.batch_size / (time.perf_counter() - start)
    # the pipeline of i2i-translate (decode in workers, translate, write in threads) with this translator
    reading = Reading(translator.channels("AtoB")[0], direction="AtoB")
    todo = [(src, Path(tmp) / "out" / src.name) for src in sorted(inputs.iterdir())]
    workers = {} if args.workers is None else {"workers": args.workers}
    start = time.perf_counter()
    failed, _ = translate_files(translator, todo, reading, batch_size=args.batch_size, amp=args.amp, progress=False,
                                **workers)
    e2e = args.images / (time.perf_counter() - start)
    assert not failed, failed
    del translator

    # the whole command: checkpoint loading and start-up included
    cmd = ["--checkpoint", str(checkpoint), "--input", str(inputs), "--output", str(Path(tmp) / "out2"),
           "--device", args.device, "--batch-size", str(args.batch_size), "--amp", args.amp]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    start = time.perf_counter()
    if translate_main(cmd) != 0:
        raise SystemExit(f"{name}: i2i-translate failed")
    command = time.perf_counter() - start
    return {
        "end_to_end_images_per_s": round(e2e, 3),
        "forward_images_per_s": round(forward, 3),
        "end_to_end_vs_forward": round(e2e / forward, 3),
        "command_s": round(command, 3),
        "command_images_per_s": round(args.images / command, 3),
        "load_s": round(load_s, 3),
        "images": args.images,
        "batch_size": args.batch_size,
        "image_size": list(x.shape[-2:]),
        **cuda_peak(device),
    }


def child(name: str, args: argparse.Namespace) -> None:
    """One case in this process; its JSON on stdout."""
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_translate(name, args, tmp) if args.translate else bench_training(name, args, tmp)
    print(json.dumps(result))


def run_case(name: str, args: argparse.Namespace, argv: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, *argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # peak RSS of the child (and of its waited-for workers)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{name}: benchmark failed:\n{err.read()[-3000:]}")
        out.seek(0)
        result = json.loads(out.read().strip().splitlines()[-1])
    return {**result, "peak_rss_gb": round(usage.ru_maxrss / 2**20, 3)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default="cyclegan_128,pix2pix_256", help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=20, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3, help="iterations before timing (compilation happens here)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers (training) or decoding workers (--translate); default: the config's "
                        "data.num_workers, i2i-translate's --workers")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="train.channels_last (default: the case's config)")
    p.add_argument("--compile", action="store_true", help="train.compile")
    p.add_argument("--compile-mode", default="default", help="train.compile_mode")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s, for fraction_of_peak (default on a GPU: its dense bf16 peak, "
                        "where known)")
    p.add_argument("--translate", action="store_true", help="time i2i-translate against the network's forward rate")
    p.add_argument("--images", type=int, default=32, help="--translate: images translated")
    p.add_argument("--data", default="", help="data root for every case (default: each case's real data folder "
                                               "when present, else the built-in generated data)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="more config overrides, applied last")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args)
        return 0
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"error: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    for flag, value, least in (("--steps", args.steps, 1), ("--warmup", args.warmup, 0), ("--threads", args.threads, 1),
                               ("--batch-size", args.batch_size, 1), ("--images", args.images, 1)):
        if value < least:
            print(f"error: {flag} must be >= {least}, got {value}", file=sys.stderr)
            return 2
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        print(f"error: --peak-tflops must be > 0, got {args.peak_tflops}", file=sys.stderr)
        return 2
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device}: no CUDA device is available to torch here", file=sys.stderr)
        return 2
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                    "torch": torch.__version__, "device": args.device, "threads": args.threads},
        "options": {"amp": args.amp, "channels_last": "config" if args.channels_last is None else args.channels_last, "compile": args.compile,
                    "batch_size": args.batch_size, "mode": "translate" if args.translate else "train"},
        "results": {},
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    for name in names:
        report["results"][name] = run_case(name, args, argv)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
