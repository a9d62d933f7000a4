"""Translating many files at the speed of the network (the work of ``i2i-translate``).

Three stages run at once:

* decoding: DataLoader worker processes (at most one per usable CPU) read, crop (``--aligned``), resize and convert
  the images, in input order;
* inference, in this process: consecutive images of equal size go through the
  translator together, up to ``batch_size`` at a time (optionally under autocast);
  a large image (more pixels than ``tile_above``, a side longer than the tile) is translated alone, in tiles;
* encoding and writing: a pool of threads turns outputs into files (atomically,
  :func:`i2i.data.io.write_image`), a bounded number of batches behind inference
  (no threads: written in this process, between batches).

The files are the ones a one-image-at-a-time loop writes: the same decoding, the same
batches, the same order of calls to the translator (the random state of test-time
dropout included).  An unreadable input is reported back, not raised.
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .data.io import image_to_tensor, read_image_sized, tensor_to_image, write_image
from .data.transforms import resize
from .errors import DataError
from .runtime import autocast


@dataclass
class Reading:
    """How inputs are decoded."""

    channels: int = 3  #: channels the translator takes
    max_pixels: int = 0  #: larger inputs are refused unread (0: the default limit)
    resize: int = 0  #: translate at N x N, write at the input's size (0: as read)
    aligned: bool = False  #: inputs hold A|B side by side: keep the half of ``direction``
    direction: str = "AtoB"


class Decoded(Dataset):
    """Item ``i``: ``(i, C x H x W tensor in [-1, 1], full (h, w), None)``, or ``(i, None, None, error)``."""

    def __init__(self, sources: list[Path], reading: Reading) -> None:
        self.sources, self.r = sources, reading
        # an image the network shrinks to --resize N is decoded no larger than needed (JPEG)
        r = reading
        self.min_size = (r.resize, r.resize * (2 if r.aligned else 1)) if r.resize else None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int):
        r = self.r
        try:
            image, full = read_image_sized(self.sources[i], channels=r.channels, max_pixels=r.max_pixels or None,
                                           min_size=self.min_size)
            if r.aligned:
                half = image.shape[1] // 2
                if half == 0:
                    raise DataError(f"{self.sources[i]}: --aligned: {image.shape[1]} px wide: no A|B halves")
                image = image[:, :half] if r.direction == "AtoB" else image[:, half:]
                full = (full[0], full[1] // 2)
            if r.resize:  # as training data is resized: area when shrinking, bicubic when enlarging
                image = resize(image, r.resize, r.resize)
            return i, image_to_tensor(image), full, None
        except DataError as exc:
            return i, None, None, str(exc)


def _write(out: torch.Tensor, dst: Path, full: tuple[int, int], resized: bool) -> str | None:
    """Write one output; None, or why it could not be written (one file never stops the others)."""
    image = tensor_to_image(out)
    if resized:  # back to the input's own size, in 8 bit
        image = resize(image, full[1], full[0])
    try:
        write_image(dst, image)
    except OSError as exc:
        return f"{dst}: cannot write: {exc.strerror or exc}"
    except DataError as exc:
        return str(exc)
    return None


def translate_files(translator, todo: list[tuple[Path, Path]], reading: Reading, *, batch_size: int = 1,
                    workers: int = 2, write_threads: int = 2, amp: str = "off", tile: int = 0, tile_above: int = 0, tiled=None,
                    progress: bool = True, unwritten: list[tuple[Path, str]] | None = None
                    ) -> tuple[list[tuple[Path, str]], dict[str, float]]:
    """Translate ``(source, destination)`` pairs; returns ``(failed, report)``: the unreadable sources with
    the reason, and the mean over the images translated whole of each measure of the translator's
    ``translation_report()`` (CoGAN's inversion error; most have none).  A source whose output cannot be
    written goes into ``unwritten`` with the reason (into ``failed`` if not given).

    ``tiled(1 x C x H x W) -> output``, if given, translates one image whose longer side is over
    ``tile`` and that has more than ``tile_above`` pixels (see ``i2i-translate --tile``).
    """
    from .data import seed_worker

    device = getattr(translator, "device", torch.device("cpu"))
    direction = reading.direction
    # a decoding process needs a CPU the network does not use: on a CPU whose cores all run torch's threads, one
    # process beside them stalls every parallel region (measured: 0.73 of the forward rate against 0.91 without)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(0, min(workers, len(todo), cpus - (torch.get_num_threads() if device.type == "cpu" else 1)))
    loader = DataLoader(Decoded([src for src, _ in todo], reading), batch_size=None, num_workers=workers,
                        worker_init_fn=seed_worker, generator=torch.Generator(),  # the global RNG is not drawn from
                        prefetch_factor=max(2, batch_size) if workers else None)
    items = iter(loader)  # workers start before any thread does
    failed: list[tuple[Path, str]] = []
    sums: dict[str, float] = {}  # of each reported measure, weighted by the images it was measured on
    measured = 0
    pending: list[tuple[torch.Tensor, Path, Path, tuple[int, int]]] = []
    writes: deque[tuple[Path, Future]] = deque()
    unwritten = failed if unwritten is None else unwritten
    bar = tqdm(total=len(todo), desc="translate", unit="img", dynamic_ncols=True, disable=not progress)

    def run(x: torch.Tensor, whole: bool = True) -> torch.Tensor:
        nonlocal measured
        with autocast(device, amp):
            out = translator.translate_tensor(x, direction) if whole else tiled(x)
        if whole and (report := translator.translation_report()):
            for name, value in report.items():
                sums[name] = sums.get(name, 0.0) + value * x.shape[0]
            measured += x.shape[0]
        return out.float().cpu()

    def written(src: Path, why: str | None) -> None:
        if why is not None:
            unwritten.append((src, why))

    def submit(pool: ThreadPoolExecutor | None, out: torch.Tensor, src: Path, dst: Path,
               full: tuple[int, int]) -> None:
        if pool is None:  # no writer threads: write here
            written(src, _write(out, dst, full, bool(reading.resize)))
            return
        writes.append((src, pool.submit(_write, out, dst, full, bool(reading.resize))))
        while len(writes) > 2 * write_threads * batch_size:  # bounded: inference waits for slow disks
            src, done = writes.popleft()
            written(src, done.result())

    def flush(pool: ThreadPoolExecutor | None) -> None:
        if pending:
            out = run(torch.stack([t for t, _, _, _ in pending]))
            for image, (_, src, dst, full) in zip(out, pending):
                submit(pool, image, src, dst, full)
            pending.clear()

    try:
        threads = ThreadPoolExecutor(write_threads, "i2i-write") if write_threads > 0 else contextlib.nullcontext()
        with threads as pool:
            for i, tensor, full, error in items:
                bar.update(1)
                src, dst = todo[i]
                if error is not None:
                    failed.append((src, error))
                    continue
                big = (tiled is not None and max(tensor.shape[-2:]) > tile
                       and tensor.shape[-2] * tensor.shape[-1] > tile_above)
                if pending and (big or (tensor.shape, full) != (pending[0][0].shape, pending[0][3])
                                or len(pending) >= batch_size):
                    flush(pool)
                if big:
                    submit(pool, run(tensor[None], whole=False)[0], src, dst, full)
                else:
                    pending.append((tensor, src, dst, full))
            flush(pool)
            while writes:
                src, done = writes.popleft()
                written(src, done.result())
    finally:
        bar.close()
        del items
    return failed, {name: total / measured for name, total in sums.items()}
