#!/usr/bin/env python
"""Training speed and peak memory of the canonical translators, as JSON.

Each case runs ``i2i-train`` in a fresh process for ``--steps`` iterations on
its canonical config (full-size networks), with the data root, image sizes
and thread count overridden, and reports:

* ``sec_per_it``: median seconds per iteration after ``--warmup`` iterations
  (data loading in the training process, ``num_workers 0``, included),
* ``peak_rss_gb``: the peak resident memory of that process (GiB, 2**30 bytes).

The ``reference`` fields are the figures of the reference implementation on a
2-core CPU machine at the same settings, for side-by-side comparison.

    python tools/benchmark.py --out bench.json
    python tools/benchmark.py --cases cyclegan_128 --steps 10 --device cuda
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
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
        "reference": {"sec_per_it": 2.28, "peak_rss_gb": 1.96},
    },
    "pix2pix_256": {
        "config": "configs/pix2pix_facades.yaml",
        "set": ["data.load_size=286", "data.crop_size=256", "data.batch_size=1"],
        "reference": {"sec_per_it": 0.68, "peak_rss_gb": 2.92},
    },
}


def run_case(name: str, args: argparse.Namespace) -> dict:
    case = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        overrides = case["set"] + [
            f"data.root={args.data}", "data.num_workers=0", f"train.threads={args.threads}",
            f"train.max_steps={args.warmup + args.steps}", f"train.device={args.device}", f"train.amp={args.amp}",
            f"train.out_dir={tmp}", "train.name=bench", "train.checkpoint_every=1000000",
            "log.every=1", "log.sample_every=1000000", "log.tensorboard=false", "log.progress=false",
        ]
        cmd = [sys.executable, "-m", "i2i.cli.train", "--config", str(ROOT / case["config"]), "--set", *overrides]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            raise SystemExit(f"{name}: training failed:\n{proc.stderr[-2000:]}")
        records = [json.loads(line) for line in (Path(tmp) / "bench" / "metrics.jsonl").read_text().splitlines()]
    times = [r["train/sec_per_it"] for r in records if r["step"] > args.warmup]
    result = {
        "sec_per_it": round(statistics.median(times), 4),
        "peak_rss_gb": round(peak_kb / 2**20, 3) if peak_kb > before else None,
        "steps_timed": len(times),
        "reference": case["reference"],
    }
    if result["peak_rss_gb"] is None:
        result["note"] = "peak RSS not above an earlier case's (run cases one per process to measure each)"
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=20, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    p.add_argument("--data", default="builtin:shapes", help="data root (default: the built-in generated data)")
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
