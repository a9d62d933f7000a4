"""Data: image I/O, paired transforms, dataset kinds, generated datasets, loaders.

Importing this package registers the dataset kinds (aligned, paired, unpaired,
single) in :data:`i2i.registry.DATASETS`.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..config import DataConfig
from ..registry import DATASETS
from . import datasets as _datasets  # noqa: F401  (registers the dataset kinds)
from .builtin import BUILTINS, is_builtin
from .io import IMAGE_EXTENSIONS, image_to_tensor, list_images, read_image, tensor_to_image, write_image
from .transforms import build_transform


def build_dataset(cfg: DataConfig, train: bool = True, phase: str | None = None) -> Dataset:
    """The dataset of kind ``cfg.kind`` for ``phase`` (default ``cfg.phase``)."""
    from ..errors import ConfigError

    if cfg.kind not in DATASETS:
        raise ConfigError(f"data.kind: {DATASETS._unknown(cfg.kind)}")
    return DATASETS.build(cfg.kind, cfg, train, phase or cfg.phase)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(dataset: Dataset, cfg: DataConfig, train: bool, seed: int = 0,
                 distributed: bool = False) -> DataLoader:
    """A DataLoader over ``dataset``: shuffled in training, reproducible from ``seed``.

    Workers get distinct seeds derived from ``seed`` (and the process rank when
    distributed), so random crops/flips/B draws differ per worker and repeat run to run.
    With ``distributed`` a :class:`DistributedSampler` shards the data; call
    ``loader.sampler.set_epoch(epoch)`` each epoch to reshuffle.  With ``num_workers=0``
    the draws come from torch's global generator (seed it with ``torch.manual_seed``).
    """
    rank = torch.distributed.get_rank() if distributed and torch.distributed.is_initialized() else 0
    generator = torch.Generator()
    generator.manual_seed(int(seed) + 1_000_003 * rank)
    sampler = DistributedSampler(dataset, shuffle=train, seed=int(seed), drop_last=False) if distributed else None
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=cfg.num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        drop_last=False,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=cfg.num_workers > 0,
    )


__all__ = [
    "BUILTINS", "IMAGE_EXTENSIONS", "build_dataset", "build_loader", "build_transform", "image_to_tensor",
    "is_builtin", "list_images", "read_image", "seed_worker", "tensor_to_image", "write_image",
]
