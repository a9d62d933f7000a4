#!/usr/bin/env python
"""Training speed and peak memory of the canonical translators, as JSON.

Each case runs ``i2i-train`` in a fresh process for ``--steps`` iterations on
its canonical config (full-size networks), with the data root, image sizes
and thread count overridden, and reports:

* ``sec_per_it``: median seconds per iteration after ``--warmup`` iterations
  (data loading in the training process, ``num_workers 0``, included; real
  images where the case's data folder exists, since generating the built-in
  images costs more than decoding files),
* ``peak_rss_gb``: the peak resident memory of that process (GiB, 2**30 bytes).

Comparisons with other implementations are measured side by side on the same
machine with ``../shared/bench/side_by_side.sh``, not stored here.

    python tools/benchmark.py --out bench.json
    python tools/benchmark.py --cases cyclegan_128 --steps 10 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "cyclegan_128": {
        "config": "configs/cyclegan_horse2zebra.yaml",
        "set": ["data.load_size=143", "data.crop_size=128", "data.batch_size=1"],
        "data": "datasets/facades_unpaired",  # tools/split_aligned.py output; else the built-in data
    },
    "cyclegan_128_6blocks": {
        "config": "configs/cyclegan_horse2zebra.yaml",
        "set": ["data.load_size=143", "data.crop_size=128", "data.batch_size=1", "nets.G.name=resnet_6blocks"],
        "data": "datasets/facades_unpaired",
    },
    "pix2pix_256": {
        "config": "configs/pix2pix_facades.yaml",
        "set": ["data.load_size=286", "data.crop_size=256", "data.batch_size=1"],
        "data": "../shared/data/facades",
    },
}


def run_case(name: str, args: argparse.Namespace) -> dict:
    case = CASES[name]
    data = args.data or (case["data"] if (ROOT / case["data"]).is_dir() else "builtin:shapes")
    with tempfile.TemporaryDirectory() as tmp:
        overrides = case["set"] + [
            f"data.root={data}", "data.num_workers=0", f"train.threads={args.threads}",
            f"train.max_steps={args.warmup + args.steps}", f"train.device={args.device}", f"train.amp={args.amp}",
            f"train.out_dir={tmp}", "train.name=bench", "train.checkpoint_every=1000000",
            "log.every=1", "log.sample_every=1000000", "log.tensorboard=false", "log.progress=false",
        ]
        cmd = [sys.executable, "-m", "i2i.cli.train", "--config", str(ROOT / case["config"]), "--set", *overrides]
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{name}: training failed:\n{err.read()[-2000:]}")
        records = [json.loads(line) for line in (Path(tmp) / "bench" / "metrics.jsonl").read_text().splitlines()]
    times = [r["train/sec_per_it"] for r in records if r["step"] > args.warmup]
    result = {
        "sec_per_it": round(statistics.median(times), 4),
        "peak_rss_gb": round(usage.ru_maxrss / 2**20, 3),
        "steps_timed": len(times),
        "data": data,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=20, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    p.add_argument("--data", default="", help="data root for every case (default: each case's real data folder "
                                               "when present, else the built-in generated data)")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"error: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "device": args.device, "threads": args.threads, "amp": args.amp},
        "results": {},
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    for name in names:
        report["results"][name] = run_case(name, args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
