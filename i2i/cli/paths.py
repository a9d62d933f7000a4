"""Checks of the paths a command will write, made before anything is written.

Each raises a one-line :class:`ConfigError` (exit 2) naming the option.  Every path i2i writes
passes :func:`check_apart`: never an input, never inside an input folder; files already there are
replaced only where i2i made them (a gallery's own files, an earlier results file, or with ``--overwrite``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import ConfigError


def _existing_ancestor(path: Path) -> Path:
    for p in (path, *path.parents):
        if os.path.lexists(p):
            return p
    return Path(".")


def check_output_dir(path: str | Path, flag: str) -> Path:
    """``path`` is a folder, or can be made one (no part of it is an existing file)."""
    path = Path(path)
    found = _existing_ancestor(path)
    if not found.is_dir():
        what = "is a file" if found == path else f"lies under {found}, which is a file"
        raise ConfigError(f"{flag} {path}: {what}, not a folder")
    return path


def check_output_file(path: str | Path, flag: str) -> Path:
    """``path`` is a file or new, and its folder can be made."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    check_output_dir(path.parent, flag)
    return path


def check_apart(path: str | Path, flag: str, inputs: Iterable[tuple[str, str | Path | None]],
                writes_in: Iterable[str | Path] = ()) -> Path:
    """``path`` (a file or folder i2i will write) is none of the ``(flag, path)`` inputs (links and hard links
    followed) and lies inside none of them; no input lies inside ``writes_in``, the folders under it where
    i2i writes or replaces files (a gallery's ``img/``, make-haze's output)."""
    path = Path(path)
    same = file_ids([path])
    for what, src in inputs:
        if src is None or str(src) == "" or str(src).startswith("builtin:"):
            continue
        src = Path(src)
        if src.resolve() == path.resolve() or (same and same.keys() & file_ids([src]).keys()):
            raise ConfigError(f"{flag} {path}: is the input {what} {src}; give another path")
        if src.is_dir() and inside(path, src):
            raise ConfigError(f"{flag} {path}: lies inside the input folder {what} {src}; give a path outside it")
        for part in writes_in:
            if inside(src, Path(part)):
                raise ConfigError(f"{flag} {path}: the input {what} {src} lies inside {part}, where i2i writes; "
                                  "give another folder")
    return path


def check_gallery_dir(path: str | Path, inputs: Iterable[tuple[str, str | Path | None]], flag: str = "--html") -> Path:
    """A results page's folder: a gallery's own (new, empty or an earlier page), apart from the inputs."""
    from ..gallery import check_out_dir

    out = check_out_dir(path, flag)
    return check_apart(out, flag, inputs, writes_in=[out / "img", out / "index.html"])


def inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it (links followed)."""
    return path.resolve().is_relative_to(folder.resolve())


def file_ids(paths) -> dict[tuple[int, int], Path]:
    """``(device, inode)`` of each existing file: two names of one file share it."""
    ids = {}
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        ids[(st.st_dev, st.st_ino)] = p
    return ids
