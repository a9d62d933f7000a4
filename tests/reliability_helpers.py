"""Shared by the reliability tests: a tiny run config and small readers."""
import json

import yaml

TINY_NETS = {"G": {"name": "unet", "num_downs": 5, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}}


def tiny_config(tmp_path, name="tiny", **train):
    """pix2pix, 32 px builtin shapes, 8 items in batches of 2: 4 steps per epoch, 8 steps in all."""
    cfg = {
        "model": "pix2pix",
        "nets": TINY_NETS,
        "data": {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2,
                 "num_workers": 0, "max_items": 8},
        "train": {"out_dir": str(tmp_path / "runs"), "epochs": 1, "epochs_decay": 1,
                  "checkpoint_every": 3, "keep_last": 10, **train},
        "log": {"every": 1, "sample_every": 100, "progress": False, "tensorboard": False},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def losses(run_dir):
    """``{step: {loss: value}}`` of the training records (seconds per iteration left out)."""
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("train/") and "sec_per_it" not in k}
            for r in records(run_dir)}


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
