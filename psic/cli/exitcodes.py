"""The exit statuses of ``psic``, derived from :mod:`psic.errors` so they cannot drift.

Every :class:`~psic.errors.PsicError` subclass carries its ``exit_code``; the table
lists each code once, described by the most general class that introduces it. Codes
that no error class owns (success, internal errors, interrupts) are added here.
"""

from __future__ import annotations

from psic import errors

SUCCESS = 0
INTERNAL = 1
USAGE = 2
INTERRUPTED = 130

# Short descriptions for the command line; a class not listed here is described by the
# first line of its docstring, so a new error class with a new code still shows up.
_DESCRIPTIONS: dict[type[errors.PsicError], str] = {
    errors.UsageError: "usage error: bad option, argument or combination of them",
    errors.PsicIOError: "I/O error: cannot read the input or write the output, or the output exists (use -f)",
    errors.FormatError: "the input is not a valid .psic file (corrupt, truncated, bad checksum)",
    errors.UnsupportedError: "unsupported format version or critical chunk: a newer psic is needed",
    errors.ModelError: "model not installed, unreadable, or its weights do not match",
    errors.KeywordError: "wrong, missing or invalid keyword",
    errors.DeterminismError: "determinism error: the decoder's index map differs from the encoder's",
    errors.InputImageError: "the input image cannot be decoded, has an unsupported layout or is too large",
    errors.DeviceError: "the requested compute device is not available",
    errors.DataError: "training or evaluation data missing, unreadable or empty",
    errors.MissingExtraError: "an optional dependency is missing: pip install 'psic[train]'",
    errors.BatchError: "files of a batch failed for different reasons (each is reported on stderr)",
}


def _error_classes() -> list[type[errors.PsicError]]:
    """PsicError and all its subclasses, parents before children."""
    found: list[type[errors.PsicError]] = []
    pending: list[type[errors.PsicError]] = [errors.PsicError]
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def _describe(cls: type[errors.PsicError]) -> str:
    if cls in _DESCRIPTIONS:
        return _DESCRIPTIONS[cls]
    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0].strip()
    return doc.rstrip(".")


def exit_codes() -> list[tuple[int, str]]:
    """``(code, description)`` for every status ``psic`` can exit with, sorted by code."""
    table: dict[int, str] = {
        SUCCESS: "success",
        INTERNAL: "internal error (a bug: please report it; PSIC_DEBUG=1 shows a traceback)",
        USAGE: "usage error: bad option, argument or combination of them",
        INTERRUPTED: "interrupted (Ctrl-C)",
    }
    for cls in _error_classes():
        if cls.exit_code not in table:
            table[cls.exit_code] = _describe(cls)
    return sorted(table.items())


def epilog() -> str:
    """The exit-status table for the top-level ``--help`` (``\\b`` keeps click from rewrapping it)."""
    lines = ["\b", "Exit status:"]
    lines.extend(f"  {code:<4} {text}" for code, text in exit_codes())
    return "\n".join(lines)
