"""Semantic checks shared by the reader and the writer, so both accept exactly the same files."""

from __future__ import annotations

import re
from collections.abc import Mapping

from psic.errors import LimitError, MalformedError, UnsupportedError, excerpt
from psic.format.records import Header, KeySlot, PsicFile
from psic.format.spec import (
    KDF_SCRYPT,
    MAX_INFLATED,
    MAX_KEY_SLOTS,
    MAX_PIXELS,
    MAX_SIDE,
    META_KEY_MAX,
    MODEL_NAME_MAX,
    MODEL_NAME_PATTERN,
    SALT_SIZE,
    VERIFIER_SIZE,
    WEIGHTS_PREFIX_SIZE,
)

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


def check_file(f: PsicFile) -> None:
    """Everything :func:`write_file` needs to produce a file :func:`read_file` accepts."""
    check_header(f.header)
    check_slot_count(len(f.key_slots))
    for slot in f.key_slots:
        check_slot(slot)
    check_metadata(f.metadata)
    _check_bytes(f.z_string, None, "z string")
    _check_bytes(f.y_string, None, "y string")
    for blob, what in ((f.icc_profile, "ICC profile"), (f.exif, "EXIF")):
        if blob is not None:
            _check_bytes(blob, None, what)
            if not 0 < len(blob) <= MAX_INFLATED:
                raise LimitError(f"{what} must be 1..{MAX_INFLATED} bytes")


def check_header(header: Header) -> None:
    """Dimensions, model name and fixed-size fields of HEAD."""
    check_dimensions(header.width, header.height)
    if not isinstance(header.source_mode, str):
        raise MalformedError("source mode must be a PIL mode name")
    check_model_name(header.model_name)
    _check_bytes(header.weights_prefix, WEIGHTS_PREFIX_SIZE, "weights prefix")
    _check_uint(header.index_crc, 32, "index CRC")


def check_dimensions(width: int, height: int) -> None:
    """Sides of at least 1 pixel and within the reader limits."""
    for name, side in (("width", width), ("height", height)):
        if not isinstance(side, int) or isinstance(side, bool) or side < 1:
            raise MalformedError(f"image {name} must be a positive integer, got {side!r}")
        if side > MAX_SIDE:
            raise LimitError(f"image {name} {side} exceeds {MAX_SIDE}")
    if width * height > MAX_PIXELS:
        raise LimitError(f"image of {width}x{height} pixels exceeds {MAX_PIXELS} pixels")


def check_model_name(name: str) -> None:
    """1..64 characters from ``[a-z0-9._-]``, starting with a letter or digit."""
    if not isinstance(name, str) or not 1 <= len(name) <= MODEL_NAME_MAX or not _MODEL_NAME.fullmatch(name):
        raise MalformedError(f"invalid model name {excerpt(name)}")


def check_slot_count(count: int) -> None:
    """A KEYS chunk holds 1..16 slots (zero slots means no KEYS chunk at all)."""
    if count > MAX_KEY_SLOTS:
        raise LimitError(f"{count} keyword slots exceed {MAX_KEY_SLOTS}")


def check_slot(slot: KeySlot) -> None:
    """Known KDF and field sizes; the scrypt cost limits are psic.keys' business."""
    _check_uint(slot.kdf, 8, "KDF id")
    if slot.kdf == 0:
        raise MalformedError("KDF id 0 is reserved")
    if slot.kdf != KDF_SCRYPT:
        raise UnsupportedError(f"unknown KDF id {slot.kdf}")
    _check_bytes(slot.salt, SALT_SIZE, "salt")
    for name in ("log2_n", "r", "p"):
        _check_uint(getattr(slot, name), 8, name)
    _check_bytes(slot.verifier, VERIFIER_SIZE, "verifier")


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Every entry must be encodable as a meta chunk."""
    for key, value in metadata.items():
        check_meta_entry(key, value)


def check_meta_entry(key: str, value: str) -> None:
    """Key of 1..79 UTF-8 bytes without NUL; value any UTF-8 text."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise MalformedError("metadata keys and values must be text")
    encoded_key = _utf8(key, "metadata key")
    _utf8(value, "metadata value")
    if not 1 <= len(encoded_key) <= META_KEY_MAX or b"\0" in encoded_key:
        raise MalformedError(f"metadata key {excerpt(key)} must be 1..{META_KEY_MAX} UTF-8 bytes without NUL")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedError(f"{what} is not valid Unicode text") from None


def _check_uint(value: int, bits: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**bits:
        raise MalformedError(f"{what} must be an unsigned {bits}-bit integer, got {value!r}")


def _check_bytes(value: bytes, size: int | None, what: str) -> None:
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        expected = "bytes" if size is None else f"{size} bytes"
        raise MalformedError(f"{what} must be {expected}")
