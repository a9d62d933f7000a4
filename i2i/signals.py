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


class Interrupted(KeyboardInterrupt):
    """A stop signal received by a command that stops at once (:func:`interrupt_on_signals`)."""

    def __init__(self, sig: signal.Signals) -> None:
        super().__init__(sig.name)
        self.signal, self.exit_code = sig, 128 + int(sig)
        self.detail = ""  #: what the command says of the state it leaves

    def __str__(self) -> str:
        return f"interrupted by {self.signal.name}" + (f": {self.detail}" if self.detail else "")


class interrupt_on_signals:
    """Context manager for commands without steps to finish (``i2i-translate``): SIGINT and SIGTERM raise
    :class:`Interrupted` in the main thread, so that ``finally`` blocks and atomic writes clean up; an error
    that the signal caused on its way (a decoding process ended by it) becomes the same :class:`Interrupted`."""

    def __init__(self) -> None:
        self.requested: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "interrupt_on_signals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if exc is not None and self.requested is not None and not isinstance(exc, Interrupted):
            raise Interrupted(self.requested) from None
        return False

    def _handle(self, signum: int, frame) -> None:
        if self.requested is None:
            self.requested = signal.Signals(signum)
        raise Interrupted(signal.Signals(signum))
