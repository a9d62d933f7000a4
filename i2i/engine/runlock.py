"""One training process per run folder: an advisory lock on ``RUN/.i2i-lock``.

The lock is ``flock``'d by the process that trains in the folder and held until
it exits; the kernel releases it when the process ends however it ends, so a
crashed run leaves no stale lock.  The file holds the pid of the holder, for the
message the second process prints.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from ..errors import I2IError

LOCK_FILE = ".i2i-lock"


def lock_run_dir(run_dir: str | Path) -> IO | None:
    """Hold the run folder's lock (keep the returned file open); I2IError if another process holds it."""
    try:
        import fcntl
    except ImportError:  # no flock on this system: no lock
        return None
    path = Path(run_dir) / LOCK_FILE
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read(32).strip()
        fh.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise I2IError(f"{run_dir}: another i2i-train{who} is training in this run folder; wait for it to end "
                       "or resume another run") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh
