"""Evaluation during training: translate a validation set, score it, keep the best.

Evaluation never changes training: RNG streams, batch-norm statistics and train/eval
modes are restored afterwards, so a run with ``eval.every`` set trains exactly as
one without.
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..config import Config
from ..data import build_dataset, build_loader
from ..metrics import MetricSuite, higher_is_better, read_palette
from ..models import preserved_buffers
from .runtime import rng_state, set_rng_state


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Restore the RNG states, buffers and train/eval modes of ``model`` on exit."""
    rng = rng_state()
    modes = [(m, m.training) for m in model.modules()]
    try:
        with preserved_buffers(model):
            yield
    finally:
        for m, mode in modes:
            m.training = mode
        set_rng_state(rng)


class Evaluator:
    """Translates ``eval.root`` (phase ``eval.phase``) in ``eval.direction`` and scores it against the other side.

    The metric suite (and its Inception network, for fid/kid/is) is built once;
    reference statistics of the validation targets are kept between evaluations.
    """

    def __init__(self, cfg: Config, device: torch.device) -> None:
        data_cfg = dataclasses.replace(cfg.data, root=cfg.eval.root, phase=cfg.eval.phase,
                                       max_items=cfg.eval.max_items, num_workers=0)
        self.loader = build_loader(build_dataset(data_cfg, train=False), data_cfg, train=False)
        palette = read_palette(cfg.eval.palette) if cfg.eval.palette else None
        self.suite = MetricSuite(list(cfg.eval.metrics), device=device, palette=palette,
                                 inception_weights=cfg.eval.inception_weights or None)
        self.direction = cfg.eval.direction
        self.device = device
        self.runs = 0

    @torch.no_grad()
    def run(self, model, html_dir: str | Path | None = None) -> dict[str, float]:
        """Scores of the validation set; with ``html_dir`` also a results page (input | output |
        target with each image's scores, :mod:`i2i.gallery`), written as the images are scored."""
        self.suite.reset(keep_reference=self.runs > 0)
        scores: dict[str, float] = {}
        with untouched(model):
            model.eval()
            rows = self._rows(model, scores)
            if html_dir is None:
                for _ in rows:
                    pass
            else:
                from ..gallery import write_gallery

                write_gallery(html_dir, rows, summary=scores, columns=["input", "output", "target"],
                              title=f"evaluation: {Path(html_dir).name}")
        self.runs += 1
        return scores

    def _rows(self, model, scores: dict[str, float]) -> Iterator[dict]:
        from ..data.io import tensor_to_image

        src, dst = ("A", "B") if self.direction == "AtoB" else ("B", "A")
        for batch in self.loader:
            pred = model.translate(batch[src].to(self.device), self.direction).float()
            per_image = self.suite.update(pred, batch[dst].to(self.device))
            names = batch.get(f"{src}_path") or [str(i) for i in range(len(pred))]
            for i, name in enumerate(names):
                yield {"name": Path(str(name)).name,
                       "images": {"input": tensor_to_image(batch[src][i]), "output": tensor_to_image(pred[i].cpu()),
                                  "target": tensor_to_image(batch[dst][i])},
                       "scores": {k: float(v[i]) for k, v in per_image.items()}}
        scores.update(self.suite.compute())

    @staticmethod
    def is_better(name: str, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if higher_is_better(name) else value < best
