"""Input and output for the command line: ``-`` for stdin/stdout, atomic file writes.

Rules every command follows:

* ``-`` as an input reads standard input (binary); as an output it writes standard
  output (binary), and only once the whole result exists, so an error writes nothing.
* An existing output is never replaced without ``force`` (:class:`OutputExistsError`).
* A file output is written to a temporary file in the same directory, synced, then
  moved into place with :func:`os.replace` (or :func:`os.link` when overwriting is not
  allowed, so that a file created meanwhile is not clobbered either). On any error the
  temporary file is removed: either the complete output exists or nothing new does.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import click

from psic.errors import OutputExistsError, PsicIOError

STDIO = "-"


def is_stdio(name: str) -> bool:
    return name == STDIO


def display_name(name: str) -> str:
    """How a path appears in messages: quoted, so spaces and odd characters stay visible."""
    return repr(os.fsdecode(name))


# --- inputs -------------------------------------------------------------------------------


def read_input(name: str) -> bytes:
    """All bytes of a file, or of standard input for ``-``."""
    if is_stdio(name):
        try:
            return _binary(sys.stdin).read()
        except OSError as exc:
            raise PsicIOError(f"cannot read standard input: {exc.strerror or exc}") from None
    try:
        with open(name, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise PsicIOError(f"cannot read {display_name(name)}: {exc.strerror or exc}") from None


# --- outputs ------------------------------------------------------------------------------


def check_output(name: str, *, force: bool) -> None:
    """Fail early, before any expensive work, when ``name`` cannot or must not be written."""
    if is_stdio(name):
        stream = _binary(sys.stdout)
        if _isatty(stream):
            raise PsicIOError("refusing to write binary data to a terminal: redirect standard output or use -o FILE")
        return
    if os.path.isdir(name):
        raise PsicIOError(f"output {display_name(name)} is a directory")
    if not force and os.path.lexists(name):
        raise OutputExistsError(f"output {display_name(name)} exists; use -f/--force to overwrite it")
    parent = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(parent):
        raise PsicIOError(f"cannot write {display_name(name)}: directory {parent!r} does not exist")


@contextlib.contextmanager
def atomic_output(name: str, *, force: bool) -> Iterator[BinaryIO]:
    """A binary file object whose contents become ``name`` only if the block succeeds."""
    if is_stdio(name):
        buffer = io.BytesIO()
        yield buffer
        _write_stdout(buffer.getvalue())
        return

    target = os.path.abspath(name)
    directory, base = os.path.split(target)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise PsicIOError(f"cannot write {display_name(name)}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise PsicIOError(f"cannot write {display_name(name)}: {exc.strerror or exc}") from None
        _commit(temp, target, name, force=force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_output(name: str, data: bytes, *, force: bool) -> None:
    with atomic_output(name, force=force) as handle:
        handle.write(data)


def _commit(temp: str, target: str, name: str, *, force: bool) -> None:
    """Give the temporary file normal permissions and move it to ``target``."""
    try:
        os.chmod(temp, 0o666 & ~_umask())
        if force:
            os.replace(temp, target)
            return
        try:
            # link() refuses an existing target atomically, unlike replace().
            os.link(temp, target)
        except FileExistsError:
            raise OutputExistsError(f"output {display_name(name)} exists; use -f/--force to overwrite it") from None
        except OSError:
            # No hard links on this file system: check, then replace.
            if os.path.lexists(target):
                raise OutputExistsError(f"output {display_name(name)} exists; use -f/--force to overwrite it") from None
            os.replace(temp, target)
        else:
            os.unlink(temp)
    except PsicIOError:
        raise
    except OSError as exc:
        raise PsicIOError(f"cannot write {display_name(name)}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_stdout(data: bytes) -> None:
    stream = _binary(sys.stdout)
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise PsicIOError("standard output was closed before all data was written") from None
    except OSError as exc:
        raise PsicIOError(f"cannot write standard output: {exc.strerror or exc}") from None


def _silence_stdout() -> None:
    """Point the stdout descriptor at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _binary(stream: object) -> BinaryIO:
    """The byte stream under a text stream (sys.stdin/sys.stdout, or click's test runner's)."""
    return getattr(stream, "buffer", stream)  # type: ignore[no-any-return,arg-type]


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


# --- status line --------------------------------------------------------------------------


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """Show ``psic: <message>...`` on stderr while the block runs, only if stderr is a terminal."""
    stream = sys.stderr
    shown = _isatty(stream)
    if shown:
        stream.write(f"psic: {message}...")
        stream.flush()
    try:
        yield
    finally:
        if shown:
            stream.write("\r\x1b[K")
            stream.flush()


def warn(message: str) -> None:
    """One line on stderr."""
    click.echo(f"psic: warning: {message}", err=True)
