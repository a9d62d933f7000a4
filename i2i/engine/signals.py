"""Clean stops: SIGINT and SIGTERM during training end the current step, then stop.

:class:`StopSignals` installs handlers (main thread only) that only set a flag; the
trainer looks at it after each step (with several processes, which must agree, at the
next log step), writes a checkpoint and stops with exit code 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM).  A second signal of
either kind stops at once, as if no handler were installed.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class StopSignals:
    """Context manager: ``requested`` is the signal received (None until one is)."""

    def __init__(self, quiet: bool = False, until: str = "this step") -> None:
        self.requested: signal.Signals | None = None
        self.quiet, self.until = quiet, until
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None:  # the second one: act as if we were not here
            previous = self._previous.get(signum, signal.SIG_DFL)
            self._restore()
            if callable(previous):
                previous(signum, frame)
            else:
                os.kill(os.getpid(), signum)
            return
        self.requested = signal.Signals(signum)
        if not self.quiet:
            print(f"\n{self.requested.name}: finishing {self.until}, then writing a checkpoint "
                  "(send it again to stop at once)", file=sys.stderr)

    @property
    def exit_code(self) -> int:
        return 128 + int(self.requested) if self.requested is not None else 1
