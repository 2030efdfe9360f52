"""Typed errors of the PSIC library.

Every failure a user can cause raises a subclass of :class:`PsicError`. Each class
carries the exit code that the ``psic`` command line returns for it, so that the CLI
maps errors to codes in one place and scripts can tell failures apart.
"""

from __future__ import annotations


class PsicError(Exception):
    """Base class of every error PSIC raises on purpose."""

    exit_code = 1


# --- files and images -----------------------------------------------------------------


class PsicIOError(PsicError):
    """An input file cannot be read or an output file cannot be written."""

    exit_code = 3


class OutputExistsError(PsicIOError):
    """The output file exists and overwriting was not allowed."""


class InputImageError(PsicError):
    """The input image cannot be decoded, has an unsupported layout or is too large."""

    exit_code = 9


# --- the .psic container ----------------------------------------------------------------


class FormatError(PsicError):
    """The bytes are not a valid ``.psic`` file."""

    exit_code = 4


class BadSignatureError(FormatError):
    """The data does not start with the ``.psic`` signature."""


class TruncatedError(FormatError):
    """The data ends before the structure it announces."""


class ChecksumError(FormatError):
    """A chunk's CRC32 does not match its contents."""


class MalformedError(FormatError):
    """A field holds a value the specification forbids (bad order, bad length, ...)."""


class LimitError(FormatError):
    """A size in the file exceeds the reader's limits (image dimensions, slot count, ...)."""


class UnsupportedError(PsicError):
    """The file is valid but needs a newer reader."""

    exit_code = 5


class UnsupportedVersionError(UnsupportedError):
    """The format's major version (or a flag) is unknown to this reader."""


class UnknownCriticalChunkError(UnsupportedError):
    """The file holds a critical chunk this reader does not understand."""


# --- models -------------------------------------------------------------------------------


class ModelError(PsicError):
    """A model cannot be found, loaded or verified."""

    exit_code = 6


class ModelNotAvailableError(ModelError):
    """The requested model (by name or by weights hash) is not installed."""


class WeightsMismatchError(ModelError):
    """A weights file does not match the sha256 it is registered or referenced with."""


class UsageError(PsicError, ValueError):
    """An argument the caller passed is invalid or conflicts with another."""

    exit_code = 2


class InvalidConditionError(UsageError):
    """A CLTG condition other than the trained values (0 = full, 1 = protected)."""


# --- keywords and modes -------------------------------------------------------------------


class KeywordError(PsicError):
    """Base class of keyword failures."""

    exit_code = 7


class WrongKeyError(KeywordError):
    """The keyword matches none of the file's keyword slots."""


class InvalidKeywordError(KeywordError):
    """A keyword that cannot be used (empty, too long, not text)."""


class KeyRequiredError(KeywordError):
    """Full mode was requested without a keyword for a file that has keyword slots."""


# --- decoding -----------------------------------------------------------------------------


class DeterminismError(PsicError):
    """The decoder's scale-index map differs from the encoder's (CRC mismatch)."""

    exit_code = 8


class DeviceError(PsicError):
    """The requested compute device is not available."""

    exit_code = 10


class DataError(PsicError):
    """Training or evaluation data is missing, unreadable or empty."""

    exit_code = 12


class MissingExtraError(PsicError):
    """A command needs an optional dependency that is not installed (``pip install 'psic[train]'``)."""

    exit_code = 13


class BatchError(PsicError):
    """Files of a batch failed for different reasons (each is reported on its own line)."""

    exit_code = 11


def excerpt(value: str | bytes, limit: int = 32) -> str:
    """``repr`` of at most ``limit`` characters or bytes of untrusted input, for error messages.

    A message that quoted a whole field could be megabytes long, so every message that
    quotes file contents goes through here.
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value) - limit} more)"


# --- warnings -------------------------------------------------------------------------------


class PsicWarning(UserWarning):
    """Base class of the warnings PSIC issues (filter them with the ``warnings`` module)."""


class ConversionWarning(PsicWarning):
    """The input has something 8-bit RGB cannot hold (animation, 16-bit, alpha, greyscale)."""


class LossyOutputWarning(PsicWarning):
    """A protected image is written in a lossy format, which may weaken its protection."""


__all__ = [
    name
    for name, value in globals().items()
    if isinstance(value, type) and issubclass(value, (PsicError, PsicWarning))
]
