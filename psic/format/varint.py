"""Unsigned LEB128 varints, restricted to 32-bit values in minimal encoding.

Minimal encoding makes every value's bytes unique, so equal files are equal bytes.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import construct as cs

from psic.errors import MalformedError

MAX_VARINT_BYTES = 5
VARINT_LIMIT = 2**32


def encode_varint(value: int) -> bytes:
    """Minimal LEB128 bytes of ``value`` (0 <= value < 2**32)."""
    if not 0 <= value < VARINT_LIMIT:
        raise MalformedError(f"varint value {value} is outside 0..2**32-1")
    out = bytearray()
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


class VarInt32(cs.Construct):
    """Construct field for :func:`encode_varint` values.

    Running out of bytes raises construct's ``StreamError`` (the caller decides whether that
    means a truncated file or a malformed payload); a non-minimal, over-long or too large
    encoding raises :class:`MalformedError`.
    """

    def _parse(self, stream: BinaryIO, context: Any, path: str) -> int:
        value = 0
        for index in range(MAX_VARINT_BYTES):
            byte = cs.stream_read(stream, 1, path)[0]
            value |= (byte & 0x7F) << (7 * index)
            if byte < 0x80:
                return _checked(value, byte, index)
        raise MalformedError(f"varint longer than {MAX_VARINT_BYTES} bytes")

    def _build(self, obj: int, stream: BinaryIO, context: Any, path: str) -> int:
        data = encode_varint(obj)
        cs.stream_write(stream, data, len(data), path)
        return obj


def _checked(value: int, last_byte: int, index: int) -> int:
    """Reject encodings that a minimal writer cannot produce."""
    if last_byte == 0 and index > 0:
        raise MalformedError("varint is not minimally encoded")
    if value >= VARINT_LIMIT:
        raise MalformedError(f"varint value {value} exceeds 2**32-1")
    return value
