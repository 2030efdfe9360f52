"""Generic framing of a ``.psic`` file: signature, version bytes and CRC-protected chunks.

This layer knows nothing about what chunks mean, except that ``IEND`` ends the file.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

import construct as cs

from psic.errors import BadSignatureError, LimitError, MalformedError, TruncatedError
from psic.format.fields import BoundedBytes, psic_errors
from psic.format.spec import IEND, MAX_CHUNK_LENGTH, SIGNATURE
from psic.format.varint import VarInt32

CRC_SIZE = 4


class Preamble(NamedTuple):
    """The three bytes after the signature."""

    major: int
    minor: int
    flags: int


class Chunk(NamedTuple):
    """A chunk whose CRC has been verified."""

    type: bytes
    payload: bytes


def is_critical(chunk_type: bytes) -> bool:
    """Critical chunks (uppercase first letter) must be understood; ancillary ones may be skipped."""
    return chunk_type[:1].isupper()


def _is_chunk_type(value: bytes) -> bool:
    return len(value) == 4 and value.isascii() and value.isalpha()


def _crc(parts: tuple[bytes, bytes]) -> int:
    """CRC32 of type + payload, computed without joining them."""
    chunk_type, payload = parts
    return zlib.crc32(payload, zlib.crc32(chunk_type))


_PREAMBLE = cs.Struct("major" / cs.Int8ub, "minor" / cs.Int8ub, "flags" / cs.Int8ub)

_CHUNK = cs.Struct(
    "type" / cs.ExprValidator(cs.Bytes(4), lambda obj, ctx: _is_chunk_type(obj)),
    "length" / cs.Rebuild(VarInt32(), lambda ctx: len(ctx.payload)),
    "payload" / BoundedBytes(cs.this.length, reserve=CRC_SIZE),
    "crc" / cs.Checksum(cs.Int32ub, _crc, lambda ctx: (ctx.type, ctx.payload)),
)


def read_preamble(stream: BinaryIO) -> Preamble:
    """Check the signature and return the version and flag bytes (not yet judged)."""
    head = stream.read(len(SIGNATURE))
    if not SIGNATURE.startswith(head):
        raise BadSignatureError("data does not start with the .psic signature")
    if len(head) < len(SIGNATURE):
        raise TruncatedError("data ends inside the .psic signature")
    with psic_errors(TruncatedError, "version bytes"):
        parsed = _PREAMBLE.parse_stream(stream)
    return Preamble(parsed.major, parsed.minor, parsed.flags)


def iter_chunks(stream: BinaryIO) -> Iterator[Chunk]:
    """Yield the chunks before ``IEND``; check that ``IEND`` is empty and ends the data."""
    while True:
        with psic_errors(TruncatedError, "chunk"):
            parsed = _CHUNK.parse_stream(stream)
        if parsed.type == IEND:
            _check_end(parsed.payload, stream)
            return
        yield Chunk(parsed.type, parsed.payload)


def _check_end(payload: bytes, stream: BinaryIO) -> None:
    if payload:
        raise MalformedError("IEND chunk must be empty")
    if stream.read(1):
        raise MalformedError("data continues after the IEND chunk")


def build_file(preamble: Preamble, chunks: Iterable[Chunk]) -> bytes:
    """Signature, preamble, the given chunks and a closing ``IEND``."""
    parts = [SIGNATURE, _PREAMBLE.build(preamble._asdict())]
    parts.extend(_build_chunk(chunk) for chunk in chunks)
    parts.append(_build_chunk(Chunk(IEND, b"")))
    return b"".join(parts)


def _build_chunk(chunk: Chunk) -> bytes:
    name = chunk.type.decode("ascii", "replace")
    if len(chunk.payload) > MAX_CHUNK_LENGTH:
        raise LimitError(f"{name} payload of {len(chunk.payload)} bytes exceeds 2**32-1")
    with psic_errors(MalformedError, f"{name} chunk"):
        return _CHUNK.build({"type": chunk.type, "payload": chunk.payload})
