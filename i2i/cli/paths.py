"""Checks of the paths a command will write, made before anything is written.

Each raises a one-line :class:`ConfigError` (exit 2) naming the option.
"""
from __future__ import annotations

import os
from pathlib import Path

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
