"""Tests of the .psic container (psic.format), format version 1.

Files for the reader are assembled here by hand from the byte layout of docs/format.md, so
the reader is checked against the specification rather than against the library's writer.
"""

from __future__ import annotations

import dataclasses
import io
import random
import re
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

from psic import errors
from psic.format import (
    MAX_PIXELS,
    MAX_SIDE,
    SIGNATURE,
    Header,
    KeySlot,
    PsicFile,
    container_overhead,
    read_file,
    source_mode_code,
    write_file,
)
from psic.format.chunks import iter_chunks, read_preamble

MINOR_OFFSET = len(SIGNATURE) + 1
SLOT = KeySlot(kdf=1, salt=bytes(range(16)), log2_n=15, r=8, p=1, verifier=bytes(range(32, 64)))


# --- helpers: a byte-level writer following the specification ----------------------------


def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def chunk(kind: bytes, payload: bytes, length: bytes | None = None) -> bytes:
    """A chunk with a correct CRC; ``length`` overrides the encoded length field."""
    crc = zlib.crc32(kind + payload).to_bytes(4, "big")
    return kind + (leb128(len(payload)) if length is None else length) + payload + crc


def head_payload(width: int = 768, height: int = 512, mode: int = 0, name: bytes = b"psic-q3") -> bytes:
    return leb128(width) + leb128(height) + bytes([mode, len(name)]) + name + b"abcd" + (123).to_bytes(4, "big")


def latn_payload(z: bytes = b"zz", y: bytes = b"yyy") -> bytes:
    return leb128(len(z)) + z + y


def slot_bytes(kdf: int = 1) -> bytes:
    return bytes([kdf]) + SLOT.salt + bytes([SLOT.log2_n, SLOT.r, SLOT.p]) + SLOT.verifier


HEAD = chunk(b"HEAD", head_payload())
LATN = chunk(b"LATN", latn_payload())
IEND = chunk(b"IEND", b"")


def assemble(*chunks: bytes, major: int = 1, minor: int = 0, flags: int = 0) -> bytes:
    return SIGNATURE + bytes([major, minor, flags]) + b"".join(chunks)


BASE_HEADER = Header(768, 512, "RGB", "psic-q3", weights_prefix=b"abcd", index_crc=123)


def header(**changes: Any) -> Header:
    return dataclasses.replace(BASE_HEADER, **changes)


def full_file() -> PsicFile:
    return PsicFile(
        header(source_mode="RGBA"),
        z_string=b"\x01" * 40,
        y_string=bytes(range(256)),
        key_slots=(SLOT, KeySlot(1, b"s" * 16, 14, 8, 2, b"v" * 32)),
        metadata={"title": "Ünïcode ✓", "author": "me", "empty": ""},
    )


# --- round trips and layout ---------------------------------------------------------------


def test_minimal_file_matches_the_specified_bytes() -> None:
    f = PsicFile(header(), b"zz", b"yyy")
    assert write_file(f) == assemble(HEAD, LATN, IEND)
    assert read_file(assemble(HEAD, LATN, IEND)) == f


def test_round_trip_with_slots_and_metadata() -> None:
    f = full_file()
    back = read_file(write_file(f))
    assert back == f
    assert back.key_slots == f.key_slots
    assert dict(back.metadata) == {"title": "Ünïcode ✓", "author": "me", "empty": ""}
    assert back.version == (1, 0)  # no 1.1 chunk: written as a 1.0 file


def test_chunks_are_written_in_order_with_metadata_sorted() -> None:
    f = PsicFile(header(), b"zz", b"yyy", (SLOT,), {"b": "2", "a": "1"})
    expected = assemble(
        HEAD,
        chunk(b"KEYS", b"\x01" + slot_bytes()),
        chunk(b"meta", b"a\x001"),
        chunk(b"meta", b"b\x002"),
        LATN,
        IEND,
    )
    assert write_file(f) == expected


def test_output_is_deterministic() -> None:
    f = full_file()
    reordered = PsicFile(f.header, f.z_string, f.y_string, f.key_slots, dict(reversed(list(f.metadata.items()))))
    assert write_file(f) == write_file(f) == write_file(reordered)


def test_records_are_hashable_and_immutable() -> None:
    f = full_file()
    assert hash(f) == hash(read_file(write_file(f)))
    with pytest.raises(TypeError):
        f.metadata["new"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("width", "height", "z_size", "y_size"),
    [(768, 512, 300, 20_000), (224, 224, 200, 1_000)],
)
def test_overhead_is_at_most_64_bytes(width: int, height: int, z_size: int, y_size: int) -> None:
    f = PsicFile(header(width=width, height=height), b"z" * z_size, b"y" * y_size)
    overhead = container_overhead(f)
    assert overhead == len(write_file(f)) - z_size - y_size
    assert overhead <= 64


def test_unknown_pil_mode_is_recorded_as_other() -> None:
    assert source_mode_code("I;16") == 7
    assert source_mode_code("La") == 255
    back = read_file(write_file(PsicFile(header(source_mode="La"), b"", b"")))
    assert back.header.source_mode == "other"


# --- damaged data ---------------------------------------------------------------------


def test_truncation_at_every_offset_raises_truncated_error() -> None:
    data = write_file(PsicFile(header(), b"zz", b"yyy", (SLOT,), {"k": "v"}))
    for size in range(len(data)):
        with pytest.raises(errors.TruncatedError):
            read_file(data[:size])


def test_random_bit_flips_are_always_rejected() -> None:
    data = write_file(PsicFile(header(), b"z" * 20, b"y" * 60, (SLOT,), {"k": "v"}))
    positions = [i for i in range(len(data)) if i != MINOR_OFFSET]  # a higher minor is valid
    rng = random.Random(20240611)
    for _ in range(2000):
        damaged = bytearray(data)
        for position in rng.sample(positions, rng.choice([1, 1, 2, 3, 8])):
            damaged[position] ^= 1 << rng.randrange(8)
        with pytest.raises((errors.FormatError, errors.UnsupportedError)):
            read_file(bytes(damaged))


def test_higher_minor_version_is_accepted() -> None:
    data = bytearray(assemble(HEAD, LATN, IEND))
    data[MINOR_OFFSET] = 7
    assert read_file(bytes(data)).version == (1, 7)


def test_wrong_crc_raises_checksum_error() -> None:
    data = bytearray(assemble(HEAD, LATN, IEND))
    data[len(SIGNATURE) + 3 + 6] ^= 0x01  # a byte inside the HEAD payload
    with pytest.raises(errors.ChecksumError):
        read_file(bytes(data))


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00", b"hello world", b"\x00" * 40, b"\x89PSIX"])
def test_wrong_signature(data: bytes) -> None:
    with pytest.raises(errors.BadSignatureError):
        read_file(data)


@pytest.mark.parametrize("data", [b"", b"\x89", SIGNATURE[:-1]])
def test_signature_prefix_is_truncated(data: bytes) -> None:
    with pytest.raises(errors.TruncatedError, match="signature"):
        read_file(data)


@pytest.mark.parametrize("major", [0, 2, 255])
def test_unsupported_major_version(major: int) -> None:
    with pytest.raises(errors.UnsupportedVersionError):
        read_file(assemble(HEAD, LATN, IEND, major=major))


@pytest.mark.parametrize("bit", range(8))
def test_any_set_flag_is_unsupported(bit: int) -> None:
    with pytest.raises(errors.UnsupportedVersionError):
        read_file(assemble(HEAD, LATN, IEND, flags=1 << bit))


def test_unknown_critical_chunk() -> None:
    with pytest.raises(errors.UnknownCriticalChunkError):
        read_file(assemble(HEAD, chunk(b"ZzZz", b"data"), LATN, IEND))


def test_unknown_ancillary_chunks_are_skipped() -> None:
    plain = read_file(assemble(HEAD, LATN, IEND))
    extra = chunk(b"tIME", b"2024-06-11")
    assert read_file(assemble(HEAD, extra, LATN, extra, IEND)) == plain


def test_ancillary_chunk_before_head_is_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(chunk(b"tIME", b"x"), HEAD, LATN, IEND))


@pytest.mark.parametrize("kind", [b"HE1D", b"HEA ", b"\xc4EAD", b"he\x00d"])
def test_chunk_type_must_be_letters(kind: bytes) -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(HEAD, chunk(kind, b""), LATN, IEND))


def test_bytes_after_iend_are_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(HEAD, LATN, IEND) + b"\x00")


def test_iend_with_payload_is_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(HEAD, LATN, chunk(b"IEND", b"x")))


def test_missing_latn_is_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(HEAD, IEND))


def test_huge_length_is_truncated_without_allocating() -> None:
    data = assemble(b"HEAD" + leb128(2**31))
    data += bytes(100 - len(data))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(errors.TruncatedError):
            read_file(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 1 << 20


class RecordingStream(io.BytesIO):
    """Remembers the largest read it was asked for."""

    largest_read = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest_read = max(self.largest_read, size if size is not None and size >= 0 else 0)
        return super().read(size)


def test_lengths_are_checked_before_reading() -> None:
    data = assemble(HEAD, chunk(b"LATN", b"", length=leb128(2**32 - 1)))
    stream = RecordingStream(data)
    read_preamble(stream)
    with pytest.raises(errors.TruncatedError):
        list(iter_chunks(stream))
    assert 0 < stream.largest_read <= len(data)


@pytest.mark.parametrize(
    "length",
    [
        b"\x95\x00",  # 21 padded with a zero continuation byte
        b"\x95\x80\x80\x80\x80\x00",  # six bytes
        b"\xff\xff\xff\xff\x1f",  # 2**35 - 1, above 2**32 - 1
    ],
)
def test_bad_length_varints_are_malformed(length: bytes) -> None:
    head = chunk(b"HEAD", head_payload(), length=length)
    with pytest.raises(errors.MalformedError):
        read_file(assemble(head, LATN, IEND))


def test_non_minimal_varint_inside_payload_is_malformed() -> None:
    payload = b"\x80\x06\x00" + head_payload()[2:]  # width 768 in three bytes
    with pytest.raises(errors.MalformedError):
        read_file(assemble(chunk(b"HEAD", payload), LATN, IEND))


@pytest.mark.parametrize(
    "chunks",
    [
        (HEAD, HEAD, LATN, IEND),
        (LATN, HEAD, IEND),
        (HEAD, LATN, LATN, IEND),
        (HEAD, LATN, chunk(b"meta", b"k\x00v"), IEND),
        (HEAD, chunk(b"meta", b"k\x00v"), chunk(b"KEYS", b"\x01" + slot_bytes()), LATN, IEND),
        (HEAD, chunk(b"KEYS", b"\x01" + slot_bytes()), chunk(b"KEYS", b"\x01" + slot_bytes()), LATN, IEND),
        (HEAD, chunk(b"meta", b"k\x00v"), chunk(b"meta", b"k\x00w"), LATN, IEND),
        (IEND,),
    ],
    ids=[
        "duplicate HEAD",
        "LATN before HEAD",
        "two LATN",
        "meta after LATN",
        "KEYS after meta",
        "two KEYS",
        "duplicate meta key",
        "IEND only",
    ],
)
def test_bad_chunk_order_is_malformed(chunks: tuple[bytes, ...]) -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(*chunks))


# --- field rules ------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(MAX_SIDE + 1, 1), (1, MAX_SIDE + 1), (8192, 8193), (2**31, 2**31)])
def test_oversized_images_hit_limits(width: int, height: int) -> None:
    with pytest.raises(errors.LimitError):
        read_file(assemble(chunk(b"HEAD", head_payload(width, height)), LATN, IEND))
    with pytest.raises(errors.LimitError):
        write_file(PsicFile(header(width=width, height=height), b"", b""))


def test_largest_images_are_accepted() -> None:
    for width, height in [(MAX_SIDE, MAX_PIXELS // MAX_SIDE), (8192, 8192)]:
        data = assemble(chunk(b"HEAD", head_payload(width, height)), LATN, IEND)
        assert read_file(data).header.width == width


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0)])
def test_empty_images_are_malformed(width: int, height: int) -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(chunk(b"HEAD", head_payload(width, height)), LATN, IEND))


@pytest.mark.parametrize("name", [b"", b"PSIC", b"-psic", b".q", b"a" * 65, b"psic q3", b"caf\xc3\xa9", b"a\x00"])
def test_bad_model_name(name: bytes) -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(chunk(b"HEAD", head_payload(name=name)), LATN, IEND))
    with pytest.raises(errors.MalformedError):
        write_file(PsicFile(header(model_name=name.decode("utf-8", "replace")), b"", b""))


def test_longest_model_name_is_accepted() -> None:
    name = "a" * 64
    assert read_file(write_file(PsicFile(header(model_name=name), b"", b""))).header.model_name == name


def test_unknown_source_mode_code_is_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(chunk(b"HEAD", head_payload(mode=15)), LATN, IEND))


def test_head_with_extra_bytes_is_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(chunk(b"HEAD", head_payload() + b"\x00"), LATN, IEND))


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", errors.MalformedError),
        (b"\x00", errors.MalformedError),
        (bytes([17]) + slot_bytes() * 17, errors.LimitError),
        (b"\x02" + slot_bytes(), errors.MalformedError),
        (b"\x01" + slot_bytes() + b"\x00", errors.MalformedError),
        (b"\x01" + slot_bytes(kdf=0), errors.MalformedError),
        (b"\x01" + slot_bytes(kdf=2), errors.UnsupportedError),
    ],
    ids=["empty", "zero slots", "17 slots", "short", "long", "kdf 0", "kdf 2"],
)
def test_bad_keys_chunk(payload: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_file(assemble(HEAD, chunk(b"KEYS", payload), LATN, IEND))


def test_sixteen_key_slots_are_accepted() -> None:
    data = assemble(HEAD, chunk(b"KEYS", bytes([16]) + slot_bytes() * 16), LATN, IEND)
    assert read_file(data).key_slots == (SLOT,) * 16


@pytest.mark.parametrize(
    "payload",
    [b"no separator", b"\x00value", b"k" * 80 + b"\x00v", b"\xff\x00v", b"k\x00\xed\xa0\x80"],
    ids=["no NUL", "empty key", "long key", "bad UTF-8 key", "bad UTF-8 value"],
)
def test_bad_meta_chunk(payload: bytes) -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(HEAD, chunk(b"meta", payload), LATN, IEND))


def test_z_length_past_latn_payload_is_malformed() -> None:
    with pytest.raises(errors.MalformedError):
        read_file(assemble(HEAD, chunk(b"LATN", leb128(10) + b"123"), IEND))


@pytest.mark.parametrize(
    ("f", "error"),
    [
        (PsicFile(header(), b"", b"", (SLOT,) * 17), errors.LimitError),
        (PsicFile(header(), b"", b"", (KeySlot(1, b"short", 15, 8, 1, bytes(32)),)), errors.MalformedError),
        (PsicFile(header(), b"", b"", (KeySlot(1, bytes(16), 256, 8, 1, bytes(32)),)), errors.MalformedError),
        (PsicFile(header(weights_prefix=b"abc"), b"", b""), errors.MalformedError),
        (PsicFile(header(index_crc=2**32), b"", b""), errors.MalformedError),
        (PsicFile(header(width=0), b"", b""), errors.MalformedError),
        (PsicFile(header(), b"", b"", metadata={"k" * 80: "v"}), errors.MalformedError),
        (PsicFile(header(), b"", b"", metadata={"a\x00b": "v"}), errors.MalformedError),
        (PsicFile(header(), b"", b"", metadata={"k": "\udc80"}), errors.MalformedError),
        (PsicFile(header(), "text", b""), errors.MalformedError),  # type: ignore[arg-type]
    ],
    ids=[
        "17 slots",
        "short salt",
        "log2_n 256",
        "short prefix",
        "big crc",
        "zero width",
        "long key",
        "NUL in key",
        "surrogate",
        "str latent",
    ],
)
def test_writer_rejects_invalid_fields(f: PsicFile, error: type[Exception]) -> None:
    with pytest.raises(error):
        write_file(f)


# --- compatibility and packaging ---------------------------------------------------------

#: The example of docs/format.md, written by format version 1.0. It must keep decoding.
GOLDEN_1_0 = bytes.fromhex(
    "89505349430d0a1a0a010000484541441340300307707369632d71331f2e3d4c0badf00d002162d64b4559"
    "53350101000102030405060708090a0b0c0d0e0f0f0801202122232425262728292a2b2c2d2e2f30313233"
    "3435363738393a3b3c3d3e3fd356896e6d6574610d736f66747761726500707369639a24d9414c41544e09"
    "030102030405060708a8f4679149454e4400ae426082"
)


def test_golden_file_of_version_1_0_decodes() -> None:
    f = read_file(GOLDEN_1_0)
    assert f.header == Header(64, 48, "RGBA", "psic-q3", bytes.fromhex("1f2e3d4c"), 0x0BADF00D)
    assert f.key_slots == (SLOT,)
    assert dict(f.metadata) == {"software": "psic"}
    assert (f.z_string, f.y_string) == (b"\x01\x02\x03", b"\x04\x05\x06\x07\x08")
    assert write_file(f) == GOLDEN_1_0


def test_specification_example_is_the_golden_file() -> None:
    spec = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text(encoding="utf-8")
    dump = re.findall(r"^[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2})+)", spec, flags=re.MULTILINE)
    assert bytes.fromhex("".join(dump)) == GOLDEN_1_0


#: Imports psic.format without running psic/__init__.py, so that only this package is judged.
_IMPORT_FORMAT_ALONE = """
import importlib.util, sys, types
package = types.ModuleType("psic")
package.__path__ = list(importlib.util.find_spec("psic").submodule_search_locations)
sys.modules["psic"] = package
import psic.format
print(sorted({name.split(".")[0] for name in sys.modules} & {"torch", "numpy", "PIL"}))
"""


def test_format_package_does_not_import_torch_or_numpy() -> None:
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", _IMPORT_FORMAT_ALONE]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=repo)
    assert result.stdout.strip() == "[]"


# --- version 1.1: the photo's ICC profile and EXIF ----------------------------------------


def test_icc_and_exif_round_trip_as_version_1_1() -> None:
    f = dataclasses.replace(full_file(), version=None, icc_profile=b"icc" * 300, exif=b"II*\0exif")
    data = write_file(f)
    assert data[MINOR_OFFSET] == 1
    back = read_file(data)
    assert (back.icc_profile, back.exif, back.version) == (f.icc_profile, f.exif, (1, 1))
    kinds = [c.type for c in iter_chunks(_after_preamble(data))]
    assert kinds == [b"HEAD", b"KEYS", b"iccp", b"exif", b"meta", b"meta", b"meta", b"LATN"]


def test_icc_payload_is_one_zlib_stream() -> None:
    profile = b"profile " * 100
    data = assemble(
        chunk(b"HEAD", head_payload()), chunk(b"iccp", zlib.compress(profile)), chunk(b"LATN", latn_payload()),
        chunk(b"IEND", b""), minor=1,
    )
    assert read_file(data).icc_profile == profile


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not zlib", errors.MalformedError),
        (zlib.compress(b"x")[:-2], errors.MalformedError),  # incomplete stream
        (zlib.compress(b"x") + b"extra", errors.MalformedError),
        (zlib.compress(b""), errors.MalformedError),
        (zlib.compress(bytes(2**24 + 1)), errors.LimitError),  # a compression bomb: refused while inflating
    ],
)
def test_bad_blob_payloads_are_rejected(payload: bytes, error: type) -> None:
    data = assemble(
        chunk(b"HEAD", head_payload()), chunk(b"exif", payload), chunk(b"LATN", latn_payload()),
        chunk(b"IEND", b""), minor=1,
    )
    with pytest.raises(error):
        read_file(data)


def test_exif_before_iccp_is_out_of_order() -> None:
    blob = zlib.compress(b"x")
    data = assemble(
        chunk(b"HEAD", head_payload()), chunk(b"exif", blob), chunk(b"iccp", blob), chunk(b"LATN", latn_payload()),
        chunk(b"IEND", b""), minor=1,
    )
    with pytest.raises(errors.MalformedError, match="out of order"):
        read_file(data)


def _after_preamble(data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)
    read_preamble(stream)
    return stream
