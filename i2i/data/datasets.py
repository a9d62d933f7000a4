"""Dataset kinds registered in ``DATASETS``: aligned, paired, unpaired, single.

Every builder has the signature ``(cfg: DataConfig, train: bool, phase: str)`` and
returns a ``torch.utils.data.Dataset`` of dicts:

* ``'A'``: float tensor ``in_channels x H x W`` in [-1, 1], ``'A_path'``: str;
* ``'B'``: float tensor ``out_channels x H x W``, ``'B_path'`` (all kinds but single);
* ``'rel_path'`` (single only): the file's path relative to the folder read.

``direction: BtoA`` swaps the roles of the two sides.  ``root: builtin:NAME`` uses a
generated dataset (see :mod:`i2i.data.builtin`) with the same semantics.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .builtin import BuiltinSet, is_builtin
from .io import IMAGE_EXTENSIONS, image_to_tensor, list_images, read_image, to_channels
from .transforms import build_transform

# a loader returns (RGB uint8 image, name) for item i
Loader = Callable[[int], tuple[np.ndarray, str]]


def image_folder(folder: Path) -> list[Path]:
    """Images under ``folder`` (recursive, sorted); ``DataError`` if missing or empty."""
    if not folder.is_dir():
        raise DataError(f"dataset folder not found: {folder}")
    paths = list_images(folder)
    if not paths:
        raise DataError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return paths


def _limit(items: list, cfg: DataConfig) -> list:
    return items[: cfg.max_items] if cfg.max_items > 0 else items


def _builtin(cfg: DataConfig, phase: str) -> BuiltinSet:
    return BuiltinSet.from_root(cfg.root, phase, max(cfg.load_size, cfg.crop_size))


def _transformed(transform, name: str, a: np.ndarray, b: np.ndarray | None = None):
    try:
        return transform(a, b)
    except DataError as exc:
        raise DataError(f"{name}: {exc}") from None


class PairDataset(Dataset):
    """Pairs ``(A, B, A_name, B_name)`` from ``load_pair``, transformed together."""

    def __init__(self, n: int, load_pair: Callable, cfg: DataConfig, train: bool) -> None:
        self.n, self.load_pair, self.cfg = n, load_pair, cfg
        self.swap = cfg.direction == "BtoA"
        self.transform = build_transform(cfg, train)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        a, b, a_name, b_name = self.load_pair(i)
        if self.swap:
            a, b, a_name, b_name = b, a, b_name, a_name
        a, b = _transformed(self.transform, a_name, to_channels(a, self.cfg.in_channels),
                            to_channels(b, self.cfg.out_channels))
        return {"A": image_to_tensor(a), "B": image_to_tensor(b), "A_path": a_name, "B_path": b_name}


class UnpairedDataset(Dataset):
    """Independent A and B collections; length ``max(nA, nB)``; random B while training."""

    def __init__(self, na: int, load_a: Loader, nb: int, load_b: Loader, cfg: DataConfig, train: bool) -> None:
        if cfg.direction == "BtoA":
            na, load_a, nb, load_b = nb, load_b, na, load_a
        self.na, self.load_a, self.nb, self.load_b = na, load_a, nb, load_b
        self.cfg, self.train = cfg, train
        self.transform = build_transform(cfg, train)

    def __len__(self) -> int:
        return max(self.na, self.nb)

    def __getitem__(self, i: int) -> dict:
        j = int(torch.randint(0, self.nb, ())) if self.train else i % self.nb
        a, a_name = self.load_a(i % self.na)
        b, b_name = self.load_b(j)
        a, _ = _transformed(self.transform, a_name, to_channels(a, self.cfg.in_channels))
        b, _ = _transformed(self.transform, b_name, to_channels(b, self.cfg.out_channels))
        return {"A": image_to_tensor(a), "B": image_to_tensor(b), "A_path": a_name, "B_path": b_name}


class SingleDataset(Dataset):
    """One collection of inputs (for translation); items carry ``rel_path`` for mirrored output."""

    def __init__(self, n: int, load: Loader, rel_paths: list[str], cfg: DataConfig, train: bool) -> None:
        self.n, self.load, self.rel_paths, self.cfg = n, load, rel_paths, cfg
        self.transform = build_transform(cfg, train)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        a, name = self.load(i)
        a, _ = _transformed(self.transform, name, to_channels(a, self.cfg.in_channels))
        return {"A": image_to_tensor(a), "A_path": name, "rel_path": self.rel_paths[i]}


def image_reader(cfg: DataConfig, aligned: bool = False) -> Callable[..., np.ndarray]:
    """``read_image`` with ``data.max_pixels``; JPEGs the preprocess shrinks are decoded at a reduced
    scale that keeps at least ``load_size`` (per half of an A | B image); cached with ``data.cache_mb``."""
    min_size = None
    if cfg.preprocess in ("resize_and_crop", "scale_width"):
        min_size = (cfg.load_size, cfg.load_size * (2 if aligned else 1))
    read = functools.partial(read_image, max_pixels=cfg.max_pixels or None, min_size=min_size)
    return CachedReader(read, cfg.cache_mb * 2**20) if cfg.cache_mb > 0 else read


class CachedReader:
    """A reader that keeps decoded images until ``budget`` bytes are held, then reads the rest from disk.

    No eviction: the first images that fit stay, so memory is bounded by ``budget`` and a
    dataset that fits is decoded once.  Callers get a copy (transforms may write in place).
    """

    def __init__(self, read: Callable[..., np.ndarray], budget: int) -> None:
        self.read, self.budget, self.held = read, budget, 0
        self.images: dict[tuple, np.ndarray] = {}

    def __call__(self, path, channels: int = 3) -> np.ndarray:
        key = (str(path), channels)
        img = self.images.get(key)
        if img is None:
            img = self.read(path, channels)
            if self.held + img.nbytes <= self.budget:
                self.images[key] = img
                self.held += img.nbytes
        return img.copy()


class FileImages:
    """Loader of single image files."""

    def __init__(self, paths: list[Path], read: Callable[..., np.ndarray] = read_image) -> None:
        self.paths, self.read = paths, read

    def __call__(self, i: int) -> tuple[np.ndarray, str]:
        return self.read(self.paths[i], 3), str(self.paths[i])


class AlignedPairs:
    """Loader splitting A | B images into their left and right halves."""

    def __init__(self, paths: list[Path], read: Callable[..., np.ndarray] = read_image) -> None:
        self.paths, self.read = paths, read

    def __call__(self, i: int):
        ab = self.read(self.paths[i], 3)
        half = ab.shape[1] // 2
        if half == 0:
            raise DataError(f"{self.paths[i]}: image too narrow to hold A | B side by side")
        return ab[:, :half], ab[:, half: 2 * half], str(self.paths[i]), str(self.paths[i])


class FilePairs:
    """Loader of matched (A file, B file) pairs."""

    def __init__(self, pairs: list[tuple[Path, Path]], read: Callable[..., np.ndarray] = read_image) -> None:
        self.pairs, self.read = pairs, read

    def __call__(self, i: int):
        pa, pb = self.pairs[i]
        return self.read(pa, 3), self.read(pb, 3), str(pa), str(pb)


class BuiltinPairs:
    """Loader of generated (A, B) pairs."""

    def __init__(self, bs: BuiltinSet) -> None:
        self.bs = bs

    def __call__(self, i: int):
        a, b = self.bs.pair(i)
        return a, b, self.bs.path(i, "A"), self.bs.path(i, "B")


class BuiltinImages:
    """Loader of one side (0 = A, 1 = B) of generated pairs, from layout stream ``stream``."""

    def __init__(self, bs: BuiltinSet, side: int, stream: int = 0) -> None:
        self.bs, self.side, self.stream = bs, side, stream

    def __call__(self, i: int) -> tuple[np.ndarray, str]:
        return self.bs.pair(i, self.stream)[self.side], self.bs.path(i, "AB"[self.side])


def _count(n: int, cfg: DataConfig) -> int:
    return min(n, cfg.max_items) if cfg.max_items > 0 else n


# --------------------------------------------------------------------------- builders
@DATASETS.register("aligned")
def aligned(cfg: DataConfig, train: bool, phase: str) -> Dataset:
    """``root/<phase>/`` images holding A | B side by side (A = left half)."""
    if is_builtin(cfg.root):
        bs = _builtin(cfg, phase)
        return PairDataset(_count(len(bs), cfg), BuiltinPairs(bs), cfg, train)
    paths = _limit(image_folder(Path(cfg.root) / phase), cfg)
    return PairDataset(len(paths), AlignedPairs(paths, image_reader(cfg, aligned=True)), cfg, train)


def match_pairs(a_paths: list[Path], a_root: Path, b_paths: list[Path], b_root: Path,
                pair_regex: str = "") -> list[tuple[Path, Path]]:
    """Match A files to B files by stem (or by the regex's first group of the A stem)."""
    pattern = re.compile(pair_regex) if pair_regex else None
    b_by_key: dict[str, Path] = {}
    for p in b_paths:
        key = (p.relative_to(b_root).parent / p.stem).as_posix()
        if key in b_by_key:
            raise DataError(f"{b_root}: two files share the stem {key!r}: {b_by_key[key].name}, {p.name}")
        b_by_key[key] = p
    pairs, missing, used = [], [], set()
    for p in a_paths:
        stem = p.stem
        if pattern is not None:
            m = pattern.search(stem)
            stem = (m.group(1) if m.groups() else m.group(0)) if m else None
        key = (p.relative_to(a_root).parent / stem).as_posix() if stem is not None else None
        if key in b_by_key:
            pairs.append((p, b_by_key[key]))
            used.add(key)
        else:
            missing.append(p.stem)
    if missing:
        raise DataError(f"{len(missing)} file(s) in {a_root} have no partner in {b_root}: {_some(missing)}")
    if pattern is None and len(used) < len(b_by_key):
        extra = [Path(k).name for k in b_by_key if k not in used]
        raise DataError(f"{len(extra)} file(s) in {b_root} have no partner in {a_root}: {_some(extra)}")
    return pairs


def _some(stems: list[str], k: int = 5) -> str:
    return ", ".join(stems[:k]) + (f" ... (+{len(stems) - k} more)" if len(stems) > k else "")


def ab_folders(cfg: DataConfig, phase: str) -> tuple[Path, Path]:
    """The A and B folders: ``root / ab_dirs[i]`` with ``{phase}`` replaced (default ``<phase>A``, ``<phase>B``)."""
    dirs = cfg.ab_dirs
    if (not isinstance(dirs, (list, tuple)) or len(dirs) != 2
            or not all(isinstance(d, str) and d.strip() for d in dirs)):
        raise ConfigError(f"data.ab_dirs: expected two folder names (A, B), got {dirs!r}")
    try:
        a, b = (d.format(phase=phase) for d in dirs)
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"data.ab_dirs: {dirs!r}: the only placeholder allowed is {{phase}}") from None
    if a == b:
        raise ConfigError(f"data.ab_dirs: A and B are the same folder {a!r}")
    return Path(cfg.root) / a, Path(cfg.root) / b


@DATASETS.register("paired")
def paired(cfg: DataConfig, train: bool, phase: str) -> Dataset:
    """A and B folders (``data.ab_dirs``, default ``root/<phase>A/``, ``root/<phase>B/``) with files
    matched by stem, or by ``pair_regex`` (RESIDE: ``'^(.*)_\\d+$'`` pairs ``hazy/1400_3.png`` with
    ``clear/1400.png``)."""
    if is_builtin(cfg.root):
        return aligned(cfg, train, phase)
    a_root, b_root = ab_folders(cfg, phase)
    pairs = match_pairs(image_folder(a_root), a_root, image_folder(b_root), b_root, cfg.pair_regex)
    pairs = _limit(pairs, cfg)
    return PairDataset(len(pairs), FilePairs(pairs, image_reader(cfg)), cfg, train)


@DATASETS.register("unpaired")
def unpaired(cfg: DataConfig, train: bool, phase: str) -> Dataset:
    """A and B folders (``data.ab_dirs``, default ``root/<phase>A/``, ``root/<phase>B/``), unrelated collections."""
    if is_builtin(cfg.root):
        bs = _builtin(cfg, phase)
        n = _count(len(bs), cfg)
        return UnpairedDataset(n, BuiltinImages(bs, 0, 0), n, BuiltinImages(bs, 1, 1), cfg, train)
    a_root, b_root = ab_folders(cfg, phase)
    a = _limit(image_folder(a_root), cfg)
    b = _limit(image_folder(b_root), cfg)
    read = image_reader(cfg)
    return UnpairedDataset(len(a), FileImages(a, read), len(b), FileImages(b, read), cfg, train)


@DATASETS.register("single")
def single(cfg: DataConfig, train: bool, phase: str) -> Dataset:
    """Every image under ``root/<phase>/`` if it exists, else under ``root`` (recursive)."""
    if is_builtin(cfg.root):
        bs = _builtin(cfg, phase)
        side = 1 if cfg.direction == "BtoA" else 0
        n = _count(len(bs), cfg)
        return SingleDataset(n, BuiltinImages(bs, side), [f"{i:04d}.png" for i in range(n)], cfg, train)
    folder = Path(cfg.root) / phase if (Path(cfg.root) / phase).is_dir() else Path(cfg.root)
    paths = _limit(image_folder(folder), cfg)
    return SingleDataset(len(paths), FileImages(paths, image_reader(cfg)), [p.relative_to(folder).as_posix() for p in paths],
                         cfg, train)
