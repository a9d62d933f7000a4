"""User-facing errors.

Anything the user can fix (a bad config key, a missing folder, an unreadable
image) raises a subclass of :class:`I2IError` with a one-line message that
names the key, file or value.  The command-line tools print that line and exit
with ``exit_code``; the traceback is shown only with ``--debug``.
"""


class I2IError(Exception):
    exit_code = 1


class ConfigError(I2IError):
    """Invalid configuration: unknown key, wrong type, impossible value."""

    exit_code = 2


class DataError(I2IError):
    """Missing folder, unreadable image, unmatched pair."""


class UntrustedCodeError(I2IError):
    """A file someone else made (a checkpoint, a run's config) asks to import code the user has not allowed."""

    exit_code = 2


class CheckpointError(I2IError):
    """Missing or incompatible checkpoint."""


class WeightsError(I2IError):
    """Pretrained weights (Inception, VGG) are not available."""
