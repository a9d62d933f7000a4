"""Evaluation during training: translate a validation set, score it, keep the best."""
from __future__ import annotations

import dataclasses

import torch
from ..config import Config
from ..data import build_dataset, build_loader
from ..metrics import MetricSuite, higher_is_better, read_palette


class Evaluator:
    """Translates ``eval.root`` (phase ``eval.phase``) A->B and scores it against B.

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
        self.device = device
        self.runs = 0

    @torch.no_grad()
    def run(self, model) -> dict[str, float]:
        self.suite.reset(keep_reference=self.runs > 0)
        was_training = model.training
        model.eval()
        try:
            for batch in self.loader:
                pred = model.translate(batch["A"].to(self.device))
                self.suite.update(pred.float(), batch["B"].to(self.device))
        finally:
            model.train(was_training)
        self.runs += 1
        return self.suite.compute()

    @staticmethod
    def is_better(name: str, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if higher_is_better(name) else value < best
