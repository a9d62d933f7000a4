"""Training on a data set with a few unreadable files.

:class:`SkipUnreadable` wraps a training dataset: an item that cannot be loaded
(:class:`DataError`: a corrupt or truncated file, one over the pixel limit, an image
smaller than the crop) is replaced by the next item that loads, the failure is
warned about once and appended to a list file (``skipped_images.txt`` in the run
folder).  If ``limit`` items in a row fail, the data set is taken to be broken and
:class:`DataError` is raised; the trainer then writes a checkpoint and stops.
"""
from __future__ import annotations

import sys
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (an error re-raised from a loader worker carries a traceback)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    last = lines[-1]
    name = f"{type(exc).__module__}.{type(exc).__name__}: "
    for prefix in (name, f"{type(exc).__name__}: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last if len(lines) > 1 and lines[0].startswith("Caught ") else lines[0]


class SkipUnreadable(Dataset):
    def __init__(self, dataset: Dataset, log_path: str | Path | None, limit: int = 16) -> None:
        self.dataset, self.limit = dataset, limit
        self.log_path = Path(log_path) if log_path else None
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):  # the wrapped dataset's attributes (transform, ...)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def _record(self, why: str) -> None:
        if why in self._seen:
            return
        self._seen.add(why)
        print(f"warning: skipped a training item: {why}", file=sys.stderr)
        if self.log_path is not None:
            try:
                with open(self.log_path, "a") as fh:
                    fh.write(why.replace("\n", " ") + "\n")
            except OSError:
                pass

    def __getitem__(self, i: int):
        n = len(self.dataset)
        why = ""
        for k in range(min(n, self.limit)):
            try:
                return self.dataset[(i + k) % n]
            except DataError as exc:
                why = one_line(exc)
                self._record(why)
        raise DataError(f"{min(n, self.limit)} training items in a row could not be loaded (the last: {why})")


def skipped(log_path: str | Path) -> list[str]:
    """The distinct entries of a skip list, in order."""
    try:
        lines = Path(log_path).read_text().splitlines()
    except OSError:
        return []
    return list(dict.fromkeys(line for line in lines if line.strip()))


def report_skipped(log_path: str | Path) -> None:
    """Say on stderr how many items were skipped, if any, and where they are listed."""
    if Path(log_path).is_file():
        print(f"note: {len(skipped(log_path))} training item(s) could not be loaded and were skipped; listed in "
              f"{log_path}", file=sys.stderr)
