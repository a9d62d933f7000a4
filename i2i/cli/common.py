"""Shared command-line behaviour: one-line errors, exit codes, --debug."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Callable, Iterator

from ..errors import I2IError


def add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a module (dotted name or .py file) that registers networks, losses, "
                             "datasets or translators; repeatable")


def add_offline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", action="store_true",
                        help="never download pretrained weights (as I2I_OFFLINE=1): a missing file is an error "
                             "saying which file to put where")


@contextlib.contextmanager
def offline_if(offline: bool) -> Iterator[None]:
    """``I2I_OFFLINE=1`` for the duration (the command's, and the processes it starts), where ``offline``."""
    from ..pretrained import OFFLINE_ENV

    saved = os.environ.get(OFFLINE_ENV)
    if offline:
        os.environ[OFFLINE_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(OFFLINE_ENV, None)
        else:
            os.environ[OFFLINE_ENV] = saved


def add_trust_imports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-imports", action="store_true",
                        help="run the imports: a checkpoint's saved config asks for (without it, only those "
                             "also given with --import run)")


def check_seed(seed: int, flag: str = "--seed") -> int:
    """A seed of 0 to 2**32 - 1 (as ``train.seed``); ConfigError naming ``flag`` otherwise."""
    from ..errors import ConfigError

    if not 0 <= seed <= 2 ** 32 - 1:
        raise ConfigError(f"{flag}: must be 0 to {2 ** 32 - 1}, got {seed}")
    return seed


def run(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call ``fn(args)``; user errors become one line on stderr and an exit code."""
    try:
        from ..plugins import load_plugins

        load_plugins(getattr(args, "imports", []))
        with offline_if(getattr(args, "offline", False)):
            return fn(args)
    except I2IError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # (i2i.signals.Interrupted names the signal)
        print(exc if hasattr(exc, "signal") else "interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except (OSError, MemoryError, RuntimeError) as exc:  # the file system or the machine said no
        line = environment_error(exc)
        if args.debug or line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 1


def environment_error(exc: BaseException) -> str | None:
    """One line for a failure of the file system or of memory, None for anything else (a bug: traceback)."""
    if isinstance(exc, OSError):
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{exc.strerror or type(exc).__name__}" + (f": {where}" if where else "")
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text:
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"out of memory ({first[:160]}); lower the batch size or the image size"
    if "dataloader worker" in text and ("killed by signal" in text or "exited unexpectedly" in text):  # a dead worker
        first = (str(exc).strip().splitlines() or [""])[0]
        return (f"a data loading process died ({first[:160]}); the system may be out of memory: "
                f"lower data.num_workers, data.cache_mb or the batch size")
    return None
