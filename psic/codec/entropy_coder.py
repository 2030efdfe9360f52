"""Entropy coding that trusts no byte: CompressAI's rANS coder behind guards a hostile string cannot pass.

CompressAI's native decoder reads 32-bit words from its input without ever looking at the
input's length, so a short or crafted string makes it read past the end (a crash, or pixels
that change from call to call). Every decode here keeps each native read inside a buffer we
own, and accepts a string only if it is exactly what the encoder writes for the decoded
symbols. The bounds, and why they hold, are in ``docs/security.md`` ("Entropy decoding").

Decoding takes one of three paths, all giving the same symbols for every genuine string:

1. *Fast*: the native decoder with tables whose escape (bypass) symbol is unreachable. Each
   symbol then reads at most one word, so ``n`` zero words of padding keep it in bounds.
   Genuine strings rarely hold an escape; when this path meets one it hands over to:
2. *Guarded*: the native decoder with its real tables and a buffer padded to the most any
   string can make it read (:func:`guard_words`), when that fits :data:`GUARD_BUDGET`;
3. *Strict*: a pure-Python decoder that stops at the end of the string (slow, any size).
"""

from __future__ import annotations

import array
import sys
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from psic.codec.compressai_parts import ans
from psic.errors import MalformedError

PRECISION = 16  # CompressAI's fixed probability precision: CDFs end at 2**16
STATE_LOW = 2**31  # rANS64 keeps its state in [2**31, 2**63)
WORD_BYTES = 4
ESCAPE_NIBBLE = 15
MAX_ESCAPE_NIBBLES = 8  # an encoder writes a 32-bit raw value as at most 8 nibbles
PAD_WORD = 0x80000000  # refills with it keep the state normalized and end an escape run
GUARD_BUDGET = 256 * 2**20  # bytes of padding the guarded path may allocate
BATCH = 2**20  # symbols per native call, so that Python lists stay small
MIN_SYMBOLS = 8  # CompressAI's encoder overruns its buffer for fewer than 6 symbols
#: Largest |symbol| coded. CompressAI's encoder loops forever on values near 2**31, and a
#: bounded latent keeps the float synthesis far from overflow.
SYMBOL_LIMIT = 2**15


@dataclass(frozen=True)
class CodingTables:
    """Validated CDF tables of one entropy model, as the native coder takes them."""

    cdfs: list[list[int]]
    sizes: list[int]
    offsets: list[int]

    def without_escape(self) -> CodingTables:
        """Same tables with a zero-width extra symbol last, so the escape is never decoded as one."""
        cdfs = [cdf[:size] + [2**PRECISION] for cdf, size in zip(self.cdfs, self.sizes)]
        return CodingTables(cdfs, [size + 1 for size in self.sizes], self.offsets)


def tables_of(entropy_model: torch.nn.Module) -> CodingTables:
    """The model's frozen tables, checked so that no native table read can leave its row."""
    buffers = dict(entropy_model.named_buffers(recurse=False))
    cdfs = buffers["_quantized_cdf"].to("cpu", torch.int64)
    sizes = buffers["_cdf_length"].reshape(-1).to("cpu", torch.int64)
    offsets = buffers["_offset"].reshape(-1).to("cpu", torch.int64)
    _check_tables(cdfs, sizes, offsets)
    return CodingTables(cdfs.tolist(), sizes.tolist(), offsets.tolist())


def _check_tables(cdfs: Tensor, sizes: Tensor, offsets: Tensor) -> None:
    """Each row a CDF of at least two symbols, 0 to 2**16, strictly increasing up to its size."""
    if cdfs.dim() != 2 or not len(cdfs) == len(sizes) == len(offsets) or not len(cdfs):
        raise ValueError("entropy tables have inconsistent shapes")
    if bool((sizes < 3).any()) or bool((sizes > cdfs.shape[1]).any()):
        raise ValueError("entropy table sizes out of range")
    last = cdfs.gather(1, (sizes - 1).view(-1, 1))
    if bool((cdfs[:, 0] != 0).any()) or bool((last != 2**PRECISION).any()):
        raise ValueError("entropy table is not a 16-bit CDF")
    inside = torch.arange(cdfs.shape[1] - 1).view(1, -1) < (sizes - 1).view(-1, 1)
    if bool((cdfs.diff(dim=1)[inside] <= 0).any()):
        raise ValueError("entropy table has a symbol of zero frequency")
    if bool((offsets.abs() >= 2**30).any()):
        raise ValueError("entropy table offset out of range")


def encode(symbols: Tensor, indexes: Tensor, tables: CodingTables) -> bytes:
    """rANS-code int32 symbols (|symbol| <= SYMBOL_LIMIT), each with the table named by its index."""
    flat_indexes = _int32_view(indexes)
    if len(flat_indexes) < MIN_SYMBOLS:
        raise ValueError(f"CompressAI's coder needs at least {MIN_SYMBOLS} symbols per string")
    if symbols.numel() and int(symbols.abs().max()) > SYMBOL_LIMIT:
        raise ValueError(f"symbols beyond +-{SYMBOL_LIMIT} cannot be coded")
    return ans.RansEncoder().encode_with_indexes(
        _int32_view(symbols), flat_indexes, tables.cdfs, tables.sizes, tables.offsets
    )


def decode(string: bytes, indexes: Tensor, tables: CodingTables, what: str) -> Tensor:
    """Decode ``indexes.numel()`` symbols; a string the encoder cannot have written raises MalformedError."""
    index_array = indexes.reshape(-1).to(torch.int32).numpy()
    check_length(len(string), len(index_array), what)
    values = _decode_fast(string, index_array, tables)
    if values is None:
        values = _decode_with_escapes(string, index_array, tables, what)
    if len(values) and int(np.abs(values).max()) > SYMBOL_LIMIT:
        raise MalformedError(f"{what}: a decoded value is beyond the limit of {SYMBOL_LIMIT}")
    symbols = torch.from_numpy(values).view(indexes.shape)
    if encode(symbols, indexes, tables) != string:
        raise MalformedError(f"{what}: not a valid entropy-coded string (corrupt or crafted)")
    return symbols


def check_length(length: int, count: int, what: str) -> None:
    """A string for ``count`` symbols is whole words: the 2-word final state, at most 2 words per symbol."""
    if count < MIN_SYMBOLS:
        raise ValueError(f"CompressAI's coder needs at least {MIN_SYMBOLS} symbols per string")
    if length % WORD_BYTES or not 2 * WORD_BYTES <= length <= WORD_BYTES * (2 * count + 3):
        raise MalformedError(f"{what}: {length} bytes cannot hold {count} entropy-coded symbols")


def guard_words(count: int, words: int) -> int:
    """Most words past the end that the native decoder can read for ``count`` symbols after ``words`` words.

    With :data:`PAD_WORD` padding: per symbol one refill, an escape run of at most 10 nibbles
    (the first pad refill ends it) and at most 150 raw nibbles (one refill per 8 nibbles, plus
    2); each real word can lengthen escape runs by 8 nibbles, worth 16 more padding words.
    """
    return 24 * count + 16 * words + 8


def _decode_fast(string: bytes, indexes: np.ndarray, tables: CodingTables) -> np.ndarray | None:
    """Symbols through the escape-free tables, or None when the string holds an escape."""
    fast = tables.without_escape()
    escape = np.asarray(tables.sizes, dtype=np.int64) - 2 + np.asarray(tables.offsets, dtype=np.int64)
    decoder = ans.RansDecoder()
    decoder.set_stream(string + bytes(WORD_BYTES * len(indexes)))  # at most one word per symbol
    out = np.empty(len(indexes), dtype=np.int32)
    for start in range(0, len(indexes), BATCH):
        batch = indexes[start : start + BATCH]
        values = np.asarray(decoder.decode_stream(batch.data, *_native(fast)), np.int32)
        if np.any(values == escape[batch]):
            return None
        out[start : start + len(batch)] = values
    return out


def _decode_with_escapes(string: bytes, indexes: np.ndarray, tables: CodingTables, what: str) -> np.ndarray:
    padding = guard_words(len(indexes), len(string) // WORD_BYTES)
    if WORD_BYTES * padding > GUARD_BUDGET:
        return _decode_strict(string, indexes, tables, what)
    decoder = ans.RansDecoder()
    decoder.set_stream(string + PAD_WORD.to_bytes(WORD_BYTES, sys.byteorder) * padding)
    out = np.empty(len(indexes), dtype=np.int32)
    for start in range(0, len(indexes), BATCH):
        batch = indexes[start : start + BATCH]
        out[start : start + len(batch)] = decoder.decode_stream(batch.data, *_native(tables))
    return out


def _decode_strict(string: bytes, indexes: np.ndarray, tables: CodingTables, what: str) -> np.ndarray:
    """The native decoder's arithmetic in Python, refusing to read past the string."""
    reader = _WordReader(string, what)
    out = array.array("i", bytes(WORD_BYTES * len(indexes)))
    cdfs, sizes, offsets = tables.cdfs, tables.sizes, tables.offsets
    mask = 2**PRECISION - 1
    for start in range(0, len(indexes), BATCH):
        for i, index in enumerate(indexes[start : start + BATCH].tolist(), start):
            cdf, size = cdfs[index], sizes[index]
            s = bisect_right(cdf, reader.state & mask, 0, size) - 1
            reader.advance(cdf[s], cdf[s + 1] - cdf[s])
            value = _escaped_value(reader, size - 2, what) if s == size - 2 else s
            out[i] = value + offsets[index]
    return np.frombuffer(out, dtype=np.int32)


def _escaped_value(reader: _WordReader, escape: int, what: str) -> int:
    """A bypass-coded value: a nibble count, then the raw value's nibbles, low first."""
    count = reader.nibble()
    if count > MAX_ESCAPE_NIBBLES:
        raise MalformedError(f"{what}: escape of {count} nibbles is longer than any encoder writes")
    raw = 0
    for j in range(count):
        raw |= reader.nibble() << (4 * j)
    if raw >= 2**31:
        raise MalformedError(f"{what}: escaped value out of range")
    return -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + escape


class _WordReader:
    """rANS64 decoder state over a string of native-order 32-bit words."""

    def __init__(self, string: bytes, what: str) -> None:
        self.words = memoryview(string).cast("I")
        self.position = 2
        self.state = self.words[0] | self.words[1] << 32
        self.what = what

    def advance(self, start: int, frequency: int) -> None:
        self.state = frequency * (self.state >> PRECISION) + (self.state & (2**PRECISION - 1)) - start
        self._refill()

    def nibble(self) -> int:
        value = self.state & ESCAPE_NIBBLE
        self.state >>= 4
        self._refill()
        return value

    def _refill(self) -> None:
        if self.state < STATE_LOW:
            if self.position >= len(self.words):
                raise MalformedError(f"{self.what}: entropy-coded data ends early")
            self.state = self.state << 32 | self.words[self.position]
            self.position += 1


def _native(tables: CodingTables) -> tuple[list, list, list]:
    return tables.cdfs, tables.sizes, tables.offsets


def _int32_view(tensor: Tensor) -> memoryview:
    """The values as a sequence the native coder reads without a copy (a Python list costs 8x more)."""
    return tensor.reshape(-1).to(torch.int32).contiguous().numpy().data
