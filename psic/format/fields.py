"""Glue between construct and PSIC: a bounds-checked bytes field and error translation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import construct as cs

from psic.errors import ChecksumError, FormatError, MalformedError


class BoundedBytes(cs.Construct):
    """Bytes whose length comes from the context, checked against the bytes left first.

    The check happens before anything is read, so a huge announced length costs nothing.
    ``reserve`` is how many bytes must still follow the field (e.g. a trailing CRC).
    """

    def __init__(self, length: Callable[[Any], int], reserve: int = 0) -> None:
        super().__init__()
        self.length = length
        self.reserve = reserve

    def _parse(self, stream: BinaryIO, context: Any, path: str) -> bytes:
        length = cs.evaluate(self.length, context)
        left = _remaining(stream)
        if length + self.reserve > left:
            raise cs.StreamError(f"length {length} (+{self.reserve}) runs past the end ({left} bytes left)", path=path)
        return cs.stream_read(stream, length, path)

    def _build(self, obj: bytes, stream: BinaryIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        cs.stream_write(stream, data, len(data), path)
        return data


def _remaining(stream: BinaryIO) -> int:
    """Bytes between the stream's position and its end."""
    position = stream.tell()
    end = stream.seek(0, 2)
    stream.seek(position)
    return end - position


@contextmanager
def psic_errors(short_data: type[FormatError], what: str) -> Iterator[None]:
    """Turn construct's exceptions into PSIC's typed errors, with ``what`` as message prefix.

    ``short_data`` is raised when the bytes run out: a truncated file at the framing level,
    a malformed payload inside a chunk whose length is already known.
    The construct error is not chained: its message can quote a whole field of the input.
    """
    try:
        yield
    except cs.StreamError as exc:
        raise short_data(_message(exc, what)) from None
    except cs.ChecksumError as exc:
        raise ChecksumError(_message(exc, what)) from None
    except cs.ConstructError as exc:
        raise MalformedError(_message(exc, what)) from None


def _message(exc: cs.ConstructError, what: str) -> str:
    """One short line: ``what``, the start of construct's message (without "Error in path"), the field."""
    text = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
    field = f" (field {exc.path.split(' -> ')[-1]})" if exc.path else ""
    return f"{what}: {_shortened(text)}{field}"


def _shortened(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
