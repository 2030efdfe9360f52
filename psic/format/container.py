"""Reading and writing whole version-1 ``.psic`` files."""

from __future__ import annotations

import io

from psic.errors import MalformedError, UnknownCriticalChunkError, UnsupportedVersionError, excerpt
from psic.format.chunks import Chunk, Preamble, build_file, is_critical, iter_chunks, read_preamble
from psic.format.payloads import (
    decode_blob,
    decode_head,
    decode_keys,
    decode_latn,
    decode_meta,
    encode_blob,
    encode_head,
    encode_keys,
    encode_latn,
    encode_meta,
)
from psic.format.records import Header, KeySlot, PsicFile
from psic.format.spec import BASE_VERSION, EXIF, FORMAT_VERSION, HEAD, ICCP, KEYS, LATN, META
from psic.format.validate import check_file

#: Position of each known chunk type in the required order; only meta may repeat.
_RANK = {HEAD: 0, KEYS: 1, ICCP: 2, EXIF: 3, META: 4, LATN: 5}
_REPEATABLE = {META}


def write_file(f: PsicFile) -> bytes:
    """Serialize ``f`` deterministically (HEAD, KEYS, iccp, exif, meta by key, LATN, IEND) after validating it.

    The version written is 1.1 with an ICC profile or EXIF and 1.0 otherwise: every
    file is readable by the oldest reader that understands all of its chunks.
    """
    check_file(f)
    chunks = [Chunk(HEAD, encode_head(f.header))]
    if f.key_slots:
        chunks.append(Chunk(KEYS, encode_keys(f.key_slots)))
    if f.icc_profile:
        chunks.append(Chunk(ICCP, encode_blob(f.icc_profile)))
    if f.exif:
        chunks.append(Chunk(EXIF, encode_blob(f.exif)))
    chunks.extend(Chunk(META, encode_meta(key, f.metadata[key])) for key in sorted(f.metadata))
    chunks.append(Chunk(LATN, encode_latn(f.z_string, f.y_string)))
    version = FORMAT_VERSION if f.icc_profile or f.exif else BASE_VERSION
    return build_file(Preamble(*version, flags=0), chunks)


def read_file(data: bytes | bytearray | memoryview) -> PsicFile:
    """Parse a whole file strictly; any defect raises a FormatError or UnsupportedError subclass."""
    stream = io.BytesIO(data)
    version = _check_preamble(read_preamble(stream))
    reader = _ChunkReader()
    for chunk in iter_chunks(stream):
        reader.add(chunk)
    return reader.result(version)


def container_overhead(f: PsicFile) -> int:
    """Bytes the container adds to the two latent strings."""
    return len(write_file(f)) - len(f.z_string) - len(f.y_string)


def _check_preamble(preamble: Preamble) -> tuple[int, int]:
    """Accept major 1 with any minor (minors only add ancillary chunks) and no flags."""
    if preamble.major != FORMAT_VERSION[0]:
        raise UnsupportedVersionError(f"format version {preamble.major}.{preamble.minor} is not supported")
    if preamble.flags:
        raise UnsupportedVersionError(f"unknown flags 0x{preamble.flags:02x}")
    return preamble.major, preamble.minor


class _ChunkReader:
    """Collects chunks in file order and enforces the ordering rules."""

    def __init__(self) -> None:
        self.rank = -1
        self.header: Header | None = None
        self.key_slots: tuple[KeySlot, ...] = ()
        self.metadata: dict[str, str] = {}
        self.latents: tuple[bytes, bytes] | None = None
        self.blobs: dict[bytes, bytes] = {}

    def add(self, chunk: Chunk) -> None:
        rank = _RANK.get(chunk.type)
        if rank is None and is_critical(chunk.type):
            raise UnknownCriticalChunkError(f"unknown critical chunk {chunk.type.decode()}")
        if self.header is None and chunk.type != HEAD:
            raise MalformedError(f"first chunk is {chunk.type.decode()}, not HEAD")
        if rank is None:
            return  # unknown ancillary chunk: skipped by design
        if rank < self.rank or (rank == self.rank and chunk.type not in _REPEATABLE):
            raise MalformedError(f"{chunk.type.decode()} chunk is out of order or repeated")
        self.rank = rank
        self._decode(chunk)

    def _decode(self, chunk: Chunk) -> None:
        if chunk.type == HEAD:
            self.header = decode_head(chunk.payload)
        elif chunk.type == KEYS:
            self.key_slots = decode_keys(chunk.payload)
        elif chunk.type == META:
            self._add_meta(*decode_meta(chunk.payload))
        elif chunk.type in (ICCP, EXIF):
            self.blobs[chunk.type] = decode_blob(chunk.payload, chunk.type.decode())
        else:
            self.latents = decode_latn(chunk.payload)

    def _add_meta(self, key: str, value: str) -> None:
        if key in self.metadata:
            raise MalformedError(f"duplicate metadata key {excerpt(key)}")
        self.metadata[key] = value

    def result(self, version: tuple[int, int]) -> PsicFile:
        if self.header is None:
            raise MalformedError("file has no HEAD chunk")
        if self.latents is None:
            raise MalformedError("file has no LATN chunk")
        z_string, y_string = self.latents
        return PsicFile(
            self.header, z_string, y_string, self.key_slots, self.metadata, version,
            icc_profile=self.blobs.get(ICCP), exif=self.blobs.get(EXIF),
        )
