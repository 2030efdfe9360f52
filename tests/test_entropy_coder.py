"""The guarded entropy coder: every path gives the encoder's symbols back, and nothing else is accepted."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model

from psic.codec import entropy_coder
from psic.errors import MalformedError


@pytest.fixture(scope="module")
def tables():
    return entropy_coder.tables_of(build_tiny_model().gaussian_conditional)


@pytest.fixture(scope="module")
def indexes(tables):
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, len(tables.sizes), (1, 12, 16, 16), generator=generator, dtype=torch.int32)


def symbols_with_escapes(indexes, escapes: int, seed: int = 0) -> torch.Tensor:
    """Small symbols, plus ``escapes`` far outside every table (coded in bypass mode)."""
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(-1, 2, indexes.shape, generator=generator, dtype=torch.int32)  # in every table
    where = torch.randperm(symbols.numel(), generator=generator)[:escapes]
    symbols.view(-1)[where] = torch.randint(-30000, 30000, (escapes,), generator=generator, dtype=torch.int32)
    return symbols


@pytest.mark.parametrize("escapes", [0, 1, 40])
def test_every_path_decodes_what_the_encoder_wrote(tables, indexes, escapes):
    symbols = symbols_with_escapes(indexes, escapes)
    string = entropy_coder.encode(symbols, indexes, tables)
    flat = indexes.reshape(-1).numpy()
    assert torch.equal(entropy_coder.decode(string, indexes, tables, "y"), symbols)
    fast = entropy_coder._decode_fast(string, flat, tables)
    assert (fast is None) == (escapes > 0)
    assert (entropy_coder._decode_with_escapes(string, flat, tables, "y") == symbols.view(-1).numpy()).all()
    assert (entropy_coder._decode_strict(string, flat, tables, "y") == symbols.view(-1).numpy()).all()


def test_strict_path_is_taken_beyond_the_guard_budget(tables, indexes, monkeypatch):
    symbols = symbols_with_escapes(indexes, 5, seed=1)
    string = entropy_coder.encode(symbols, indexes, tables)
    monkeypatch.setattr(entropy_coder, "GUARD_BUDGET", 0)
    monkeypatch.setattr(entropy_coder, "_decode_fast", lambda *args: None)
    assert torch.equal(entropy_coder.decode(string, indexes, tables, "y"), symbols)


@pytest.mark.parametrize(
    "string",
    [b"", b"\x01" * 10, b"\x00" * 7, b"\xff" * 8, b"\xff" * 64, b"\x00" * 64, b"\xff" * 600_000],
    ids=["empty", "10 bytes", "7 bytes", "8x ff", "64x ff", "64x 00", "600 kB ff"],
)
def test_hostile_strings_are_refused(tables, indexes, string):
    with pytest.raises(MalformedError):
        entropy_coder.decode(string, indexes, tables, "y string")


def test_damaged_strings_are_refused_not_decoded(tables, indexes):
    string = entropy_coder.encode(symbols_with_escapes(indexes, 3), indexes, tables)
    for position in range(0, len(string), max(1, len(string) // 16)):
        damaged = bytearray(string)
        damaged[position] ^= 0x10
        with pytest.raises(MalformedError):
            entropy_coder.decode(bytes(damaged), indexes, tables, "y string")
    with pytest.raises(MalformedError):
        entropy_coder.decode(string + bytes(4), indexes, tables, "y string")


def test_strict_decoder_stops_at_the_end_of_the_string(tables, indexes):
    string = entropy_coder.encode(symbols_with_escapes(indexes, 3), indexes, tables)
    with pytest.raises(MalformedError, match="ends early"):
        entropy_coder._decode_strict(string[:8], indexes.reshape(-1).numpy(), tables, "y string")


def test_out_of_range_symbols_are_not_coded(tables, indexes):
    symbols = torch.zeros_like(indexes)
    symbols.view(-1)[0] = entropy_coder.SYMBOL_LIMIT + 1
    with pytest.raises(ValueError):
        entropy_coder.encode(symbols, indexes, tables)
    with pytest.raises(ValueError):
        entropy_coder.encode(symbols.view(-1)[:4], indexes.view(-1)[:4], tables)


def test_broken_tables_are_refused():
    gaussian = build_tiny_model().gaussian_conditional
    gaussian._quantized_cdf[3, 2] = gaussian._quantized_cdf[3, 1]  # a zero-frequency symbol
    with pytest.raises(ValueError):
        entropy_coder.tables_of(gaussian)
    gaussian = build_tiny_model().gaussian_conditional
    gaussian._cdf_length[0] = gaussian._quantized_cdf.shape[1] + 1
    with pytest.raises(ValueError):
        entropy_coder.tables_of(gaussian)


def test_guard_covers_a_full_escape_for_every_symbol():
    # 10 escape nibbles and 150 raw nibbles per symbol are at most 21 refills; each real word adds 15.
    assert entropy_coder.guard_words(1, 0) >= 1 + 1 + 19
    assert entropy_coder.guard_words(0, 1) >= 15
