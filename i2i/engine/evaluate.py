"""Evaluation during training: translate a validation set, score it, keep the best.

Evaluation never changes training: RNG streams, batch-norm statistics and train/eval
modes are restored afterwards, so a run with ``eval.every`` set trains exactly as
one without.

With several processes every process translates and scores its share of the set
(items r, r + n, r + 2n... on rank r of n); their metric states are then gathered
(features for FID/KID/IS, per-image scores, confusion matrices) and every process
computes the same scores of the whole set, equal to those of one process.  A
results page is written by rank 0 from the rows of all processes, batch by batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from torch.utils.data import Subset

from ..config import Config
from ..data import build_dataset, build_loader
from ..data.skipping import one_line
from ..errors import DataError
from ..metrics import MetricSuite, higher_is_better, read_palette
from ..nn.sync_bn import local_statistics
from ..snapshot import restored
from . import distributed as dist
from .rng import rng_state, set_rng_state


@contextlib.contextmanager
def untouched(model: nn.Module, device: torch.device | None = None) -> Iterator[None]:
    """Restore the RNG states (``device``'s too), buffers and train/eval modes of ``model`` on exit."""
    rng = rng_state(device)
    modes = [(m, m.training) for m in model.modules()]
    try:
        with restored(model.buffers()):
            yield
    finally:
        for m, mode in modes:
            m.training = mode
        set_rng_state(rng, device)


class Evaluator:
    """Translates ``eval.root`` (phase ``eval.phase``) in ``eval.direction`` and scores it against the other side.

    The metric suite (and its Inception network, for fid/kid/is) is built once;
    reference statistics of the validation targets are kept between evaluations.
    """

    def __init__(self, cfg: Config, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        data_cfg = dataclasses.replace(cfg.data, root=cfg.eval.root, phase=cfg.eval.phase,
                                       preprocess=cfg.eval.preprocess or cfg.data.preprocess,
                                       max_items=cfg.eval.max_items, num_workers=0)
        dataset = build_dataset(data_cfg, train=False)
        self.rank, self.world = rank, world_size
        # rank 0 has the largest share: the number of batches every process takes part in (pages)
        self.max_batches = math.ceil(math.ceil(len(dataset) / world_size) / data_cfg.batch_size)
        if world_size > 1:
            dataset = Subset(dataset, range(rank, len(dataset), world_size))
        self.loader = build_loader(dataset, data_cfg, train=False)
        palette = read_palette(cfg.eval.palette) if cfg.eval.palette else None
        self.suite = MetricSuite(list(cfg.eval.metrics), device=device, palette=palette,
                                 inception_weights=cfg.eval.inception_weights or None)
        if world_size > 1:
            self.suite.check_shardable()
        self.direction = cfg.eval.direction
        self.device = device
        self.runs = 0

    @torch.no_grad()
    def run(self, model, html_dir: str | Path | None = None) -> dict[str, float]:
        """Scores of the validation set; with ``html_dir`` also a results page (input | output |
        target with each image's scores, :mod:`i2i.gallery`), written as the images are scored."""
        self.suite.reset(keep_reference=self.runs > 0)
        scores: dict[str, float] = {}
        with untouched(model, self.device), local_statistics(model):
            model.eval()
            rows = self._rows(model, scores, pages=html_dir is not None)
            if html_dir is None or self.rank != 0:
                for _ in rows:
                    pass
            else:
                from ..gallery import write_gallery

                write_gallery(html_dir, rows, summary=scores, columns=["input", "output", "target"],
                              title=f"evaluation: {Path(html_dir).name}")
        self.runs += 1
        return scores

    def _batches(self, model, pages: bool) -> Iterator[list[dict]]:
        """This process's batches, scored; each gives its rows (page rows only with ``pages``)."""
        from ..data.io import tensor_to_image

        src, dst = ("A", "B") if self.direction == "AtoB" else ("B", "A")
        for batch in self.loader:
            pred = model.translate(batch[src].to(self.device), self.direction).float()
            per_image = self.suite.update(pred, batch[dst].to(self.device))
            names = batch.get(f"{src}_path") or [str(i) for i in range(len(pred))]
            yield [{"name": Path(str(name)).name,
                    "images": {"input": tensor_to_image(batch[src][i]), "output": tensor_to_image(pred[i].cpu()),
                               "target": tensor_to_image(batch[dst][i])},
                    "scores": {k: float(v[i]) for k, v in per_image.items()}}
                   for i, name in enumerate(names)] if pages else []

    def _rows(self, model, scores: dict[str, float], pages: bool) -> Iterator[dict]:
        if self.world == 1:
            for rows in self._batches(model, pages):
                yield from rows
            scores.update(self.suite.compute())
            return
        # several processes: an unreadable image on one stops all of them together, never in a collective alone
        batches, error = self._batches(model, pages), None
        for _ in range(self.max_batches if pages else 0):
            rows: list[dict] = []
            if error is None:
                try:
                    rows = next(batches, [])
                except DataError as exc:
                    error = one_line(exc)
            shared = dist.all_gather_object((rows, error))
            _raise_any(shared)
            for rank_rows, _ in shared:
                yield from rank_rows
        if error is None:
            try:
                for _ in batches:
                    pass
            except DataError as exc:
                error = one_line(exc)
        shared = dist.all_gather_object((self.suite.shard_state() if error is None else None, error))
        _raise_any(shared)
        scores.update(self.suite.compute_shards([state for state, _ in shared]))

    @staticmethod
    def is_better(name: str, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if higher_is_better(name) else value < best


def _raise_any(shared: list[tuple]) -> None:
    """The first process's error (``DataError``), raised on every process."""
    for rank, (_, error) in enumerate(shared):
        if error is not None:
            raise DataError(f"rank {rank}: {error}")
