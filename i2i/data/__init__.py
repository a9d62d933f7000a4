"""Data: image I/O, paired transforms, dataset kinds, generated datasets, loaders.

Importing this package registers the dataset kinds (aligned, paired, unpaired,
single) in :data:`i2i.registry.DATASETS`.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import DataConfig
from ..registry import DATASETS
from . import datasets as _datasets  # noqa: F401  (registers the dataset kinds)
from .builtin import BUILTINS, is_builtin
from .sampler import ResumableSampler
from .io import IMAGE_EXTENSIONS, image_to_tensor, list_images, read_image, tensor_to_image, write_image
from .transforms import build_transform


def build_dataset(cfg: DataConfig, train: bool = True, phase: str | None = None) -> Dataset:
    """The dataset of kind ``cfg.kind`` for ``phase`` (default ``cfg.phase``)."""
    from ..errors import ConfigError

    if cfg.kind not in DATASETS:
        raise ConfigError(f"data.kind: {DATASETS._unknown(cfg.kind)}")
    return DATASETS.build(cfg.kind, cfg, train, phase or cfg.phase)


def check_data_config(cfg: DataConfig, path: str = "data", check_paths: bool = True) -> None:
    """One-line ConfigError for an unknown dataset kind, or a root that is not set or not there."""
    from pathlib import Path

    from ..errors import ConfigError

    if cfg.kind not in DATASETS:
        raise ConfigError(f"{path}.kind: {DATASETS._unknown(cfg.kind)}")
    if not cfg.root:
        raise ConfigError(f"{path}.root: not set (a dataset folder, or builtin:NAME)")
    if check_paths and not is_builtin(cfg.root) and not Path(cfg.root).is_dir():
        shown = cfg.root if cfg.root.isprintable() else repr(cfg.root)  # the message stays one line
        from .download import download_command

        command = download_command(cfg.root)
        hint = f" (download it with: {command})" if command and command.isprintable() else ""
        raise ConfigError(f"{path}.root: folder not found: {shown}{hint}")
    from .io import pixel_limit

    limit = pixel_limit(cfg.max_pixels)  # $I2I_MAX_PIXELS read here, not first in a loader worker
    sizes = {"resize_and_crop": ("load_size", "crop_size"), "scale_width": ("load_size", "crop_size"),
             "crop": ("crop_size",)}.get(cfg.preprocess, ())
    for key in sizes:  # an image of a size no image read may have would only fill the memory
        size = getattr(cfg, key)
        if size * size > limit:
            raise ConfigError(f"{path}.{key}: {size} x {size} pixels is more than the pixel limit ({limit}; "
                              f"{path}.max_pixels or $I2I_MAX_PIXELS)")


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from torch's per-worker seed.

    Workers ignore SIGINT: Ctrl-C reaches every process of the terminal's group, and the
    main process alone decides how training stops (it finishes the step and checkpoints).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(dataset: Dataset, cfg: DataConfig, train: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1, pin_memory: bool | None = None) -> DataLoader:
    """A DataLoader over ``dataset``: shuffled in training, reproducible from ``seed``.

    The sampler is a :class:`ResumableSampler` (``loader.sampler.set_epoch(epoch,
    start)`` reshuffles and skips what a resumed run has already seen; with several
    processes each ``rank`` takes its share).  Worker seeds come from the loader's
    own generator (``loader.generator``), not from torch's global one, so that
    starting an epoch does not change the global random state; each worker seeds
    numpy and ``random`` from its torch seed, so random crops, flips and B draws
    differ per worker and repeat run to run.  Batches go to pinned memory (for asynchronous
    copies) when ``pin_memory`` is true, or if it is None, when CUDA is available.
    """
    generator = torch.Generator()
    generator.manual_seed(int(seed) + 1_000_003 * rank)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=ResumableSampler(len(dataset), train, int(seed), rank, world_size),
        num_workers=cfg.num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        drop_last=False,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=cfg.num_workers > 0,
        prefetch_factor=cfg.prefetch_factor if cfg.num_workers > 0 else None,
    )


__all__ = [
    "BUILTINS", "IMAGE_EXTENSIONS", "build_dataset", "check_data_config", "build_loader", "build_transform", "image_to_tensor",
    "is_builtin", "list_images", "read_image", "ResumableSampler", "seed_worker", "tensor_to_image", "write_image",
]
