"""Small shared helpers: atomic file writes."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def current_umask() -> int:
    """The process's umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it: put it back at once
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: an existing file's own, else 0666 less the umask."""
    try:
        st = path.stat()
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~current_umask()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system of ``folder`` takes."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def temp_affixes(path: Path) -> tuple[str, str]:
    """``(prefix, suffix)`` of a hidden temporary file beside ``path`` whose whole name (with the 8 random
    characters of :func:`tempfile.mkstemp` between them) stays within the file system's name limit: the
    target's stem is shortened where it must be, its suffix kept unless it is itself most of a name."""
    room = _name_max(path.parent) - len(".." + "x" * 8 + ".tmp")
    suffix = path.suffix if len(os.fsencode(path.suffix)) <= room // 2 else ""
    stem = path.name[: len(path.name) - len(suffix)]
    while stem and len(os.fsencode(stem + suffix)) > room:
        stem = stem[:-1]
    return f".{stem}.", f".tmp{suffix}"


@contextmanager
def atomic_path(path: str | Path, sync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    A reader never sees a half-written file, and a crash leaves the old file intact.
    The temporary file keeps the target's suffix so that writers that pick a
    format from the extension (OpenCV) still work; its name stays within the file system's
    limit for any name ``path`` may have (:func:`temp_affixes`).  The file gets the mode a plain
    ``open(path, "w")`` would give it (the existing file's, or 0666 less the umask).
    ``sync`` flushes the data to disk before the rename (and the rename after it), so
    that a power loss leaves the old file or the new one, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = temp_affixes(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _mode_for(path))
        if sync:
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        if sync:
            _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def replace_folder(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` to ``target``; an existing ``target`` is swapped out first and
    then removed, so ``target`` is always either the old folder or the new one, never a mixture."""
    if target.exists():
        old = new.with_suffix(".old")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
