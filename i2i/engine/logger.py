"""Run logging: JSONL scalars, TensorBoard scalars and images, PNG sample grids.

(torchvision is not imported here: with a CUDA build of torch it adds about
160 MB to the resident memory of every training process.)"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..data.io import tensor_to_image, write_image
from ..tiling import image_grid


def json_number(value: float) -> float | str:
    """``value``, or "nan", "inf", "-inf" for the values JSON has no number for."""
    return value if math.isfinite(value) else str(value)


class RunLogger:
    """Writes into a run folder: ``metrics.jsonl``, ``tb/`` and ``samples/``."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, purge_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.sample_dir = self.run_dir / "samples"
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run: TensorBoard drops the events of steps >= purge_step written before
            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        """Append one JSON record; NaN and infinities are written as the strings "nan", "inf", "-inf"
        (bare NaN is not JSON), so every line of ``metrics.jsonl`` parses."""
        record = {"step": step, **{f"{prefix}/{k}": json_number(float(v)) for k, v in values.items()}}
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(record, allow_nan=False) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def samples(self, step: int, rows: list[torch.Tensor], max_rows: int = 4) -> Path:
        """One grid row per example: its images (A, G(A), B, ...) side by side."""
        columns = [r[:max_rows].detach().float().cpu() for r in rows]
        columns = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns]
        image = tensor_to_image(image_grid([list(example) for example in zip(*columns)]))
        path = self.sample_dir / f"step_{step:07d}.png"
        write_image(path, image)
        if self.writer is not None:
            self.writer.add_image("samples", np.ascontiguousarray(image), step, dataformats="HWC")
        return path

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
