"""Payloads of the version-1 chunks (HEAD, KEYS, meta, LATN): bytes <-> records.

Every decoder gets a payload whose length and CRC are already verified, so running out of
bytes inside it means the payload is malformed, not that the file is truncated.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict

import construct as cs

from psic.errors import LimitError, MalformedError
from psic.format.fields import BoundedBytes, psic_errors
from psic.format.records import Header, KeySlot
from psic.format.spec import (
    MAX_INFLATED,
    META_KEY_MAX,
    SALT_SIZE,
    SOURCE_MODES,
    VERIFIER_SIZE,
    WEIGHTS_PREFIX_SIZE,
    source_mode_code,
)
from psic.format.validate import check_header, check_meta_entry, check_slot, check_slot_count
from psic.format.varint import VarInt32

_HEAD = cs.Struct(
    "width" / VarInt32(),
    "height" / VarInt32(),
    "source_mode" / cs.Int8ub,
    "model_name" / cs.PascalString(cs.Int8ub, "ascii"),
    "weights_prefix" / cs.Bytes(WEIGHTS_PREFIX_SIZE),
    "index_crc" / cs.Int32ub,
    cs.Terminated,
)

_SLOT = cs.Struct(
    "kdf" / cs.Int8ub,
    "salt" / cs.Bytes(SALT_SIZE),
    "log2_n" / cs.Int8ub,
    "r" / cs.Int8ub,
    "p" / cs.Int8ub,
    "verifier" / cs.Bytes(VERIFIER_SIZE),
)
SLOT_SIZE = _SLOT.sizeof()

_KEYS = cs.Struct("slots" / cs.PrefixedArray(cs.Int8ub, _SLOT), cs.Terminated)

_META = cs.Struct("key" / cs.CString("utf8"), "value" / cs.GreedyString("utf8"))

_LATN = cs.Struct(
    "z_length" / cs.Rebuild(VarInt32(), cs.len_(cs.this.z)),
    "z" / BoundedBytes(cs.this.z_length),
    "y" / cs.GreedyBytes,
)


def encode_head(header: Header) -> bytes:
    """HEAD payload of a validated header; PIL modes outside the table become "other"."""
    fields = {
        "width": header.width,
        "height": header.height,
        "source_mode": source_mode_code(header.source_mode),
        "model_name": header.model_name,
        "weights_prefix": header.weights_prefix,
        "index_crc": header.index_crc,
    }
    with psic_errors(MalformedError, "HEAD payload"):
        return _HEAD.build(fields)


def decode_head(payload: bytes) -> Header:
    """Header of a HEAD payload, with the same checks the writer applies."""
    with psic_errors(MalformedError, "HEAD payload"):
        parsed = _HEAD.parse(payload)
    if parsed.source_mode not in SOURCE_MODES:
        raise MalformedError(f"unknown source mode code {parsed.source_mode}")
    header = Header(
        width=parsed.width,
        height=parsed.height,
        source_mode=SOURCE_MODES[parsed.source_mode],
        model_name=parsed.model_name,
        weights_prefix=parsed.weights_prefix,
        index_crc=parsed.index_crc,
    )
    check_header(header)
    return header


def encode_keys(slots: tuple[KeySlot, ...]) -> bytes:
    """KEYS payload of validated slots."""
    with psic_errors(MalformedError, "KEYS payload"):
        return _KEYS.build({"slots": [asdict(slot) for slot in slots]})


def decode_keys(payload: bytes) -> tuple[KeySlot, ...]:
    """Slots of a KEYS payload; the count is judged before the slots are parsed."""
    count = payload[0] if payload else 0
    if count == 0:
        raise MalformedError("KEYS chunk must hold at least one slot")
    check_slot_count(count)
    if len(payload) != 1 + SLOT_SIZE * count:
        raise MalformedError(f"KEYS payload of {len(payload)} bytes does not hold {count} slots")
    with psic_errors(MalformedError, "KEYS payload"):
        parsed = _KEYS.parse(payload)
    slots = tuple(KeySlot(s.kdf, s.salt, s.log2_n, s.r, s.p, s.verifier) for s in parsed.slots)
    for slot in slots:
        check_slot(slot)
    return slots


def encode_meta(key: str, value: str) -> bytes:
    """meta payload of a validated entry."""
    with psic_errors(MalformedError, "meta payload"):
        return _META.build({"key": key, "value": value})


def decode_meta(payload: bytes) -> tuple[str, str]:
    """(key, value) of a meta payload."""
    if b"\0" not in payload[: META_KEY_MAX + 1]:
        raise MalformedError(f"meta key is missing its NUL or longer than {META_KEY_MAX} bytes")
    with psic_errors(MalformedError, "meta payload"):
        parsed = _META.parse(payload)
    check_meta_entry(parsed.key, parsed.value)
    return parsed.key, parsed.value


def encode_latn(z_string: bytes, y_string: bytes) -> bytes:
    """LATN payload: the z length, then z, then y up to the end."""
    with psic_errors(MalformedError, "LATN payload"):
        return _LATN.build({"z": z_string, "y": y_string})


def decode_latn(payload: bytes) -> tuple[bytes, bytes]:
    """(z, y) of a LATN payload."""
    with psic_errors(MalformedError, "LATN payload"):
        parsed = _LATN.parse(payload)
    return parsed.z, parsed.y


def encode_blob(data: bytes) -> bytes:
    """iccp / exif payload: the bytes as one zlib stream (RFC 1950)."""
    return zlib.compress(data, 9)


def decode_blob(payload: bytes, what: str) -> bytes:
    """The bytes of an iccp / exif payload, inflated to at most MAX_INFLATED bytes."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(payload, MAX_INFLATED)
    except zlib.error as exc:
        raise MalformedError(f"{what} payload is not a zlib stream: {exc}") from None
    if inflater.unconsumed_tail:
        raise LimitError(f"{what} payload inflates to more than {MAX_INFLATED} bytes")
    if not inflater.eof or inflater.unused_data:
        raise MalformedError(f"{what} payload is not exactly one complete zlib stream")
    if not data:
        raise MalformedError(f"{what} payload is empty")
    return data
