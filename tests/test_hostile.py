"""Crafted files against the public API: typed errors, short messages, no keyword left behind."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import numpy as np
import pytest
from fuzzing import _head_payload, _raw_file

import psic
from psic.errors import FormatError, KeywordError, MalformedError, PsicError
from psic.format import read_file, write_file
from psic.format.chunks import Chunk
from psic.format.payloads import encode_latn
from psic.format.spec import META

KEYWORD = "correct horse battery staple"
PACKAGE = str(Path(psic.__file__).parent)


@pytest.fixture(scope="module")
def genuine(tiny_model_path) -> bytes:
    image = np.random.default_rng(5).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    return psic.encode(image, model=str(tiny_model_path), keys=[KEYWORD])


def decode(data: bytes, tiny_model_path, **kwargs):
    return psic.decode(data, model=str(tiny_model_path), **kwargs)


def with_latents(data: bytes, z: bytes | None = None, y: bytes | None = None) -> bytes:
    f = read_file(data)
    return write_file(dataclasses.replace(f, z_string=f.z_string if z is None else z, y_string=f.y_string if y is None else y))


def test_legal_header_with_empty_latents_is_refused(genuine, tiny_model_path):
    header = read_file(genuine).header
    data = _raw_file(_head_payload(header, 32768, 2048), encode_latn(b"", b""))
    assert len(data) < 80
    with pytest.raises(MalformedError, match="z string"):
        decode(data, tiny_model_path)


@pytest.mark.parametrize(
    "y", [b"", None, b"\x01" * 10, b"\xff" * 600_000], ids=["emptied", "cut by a word", "10 bytes", "600 kB of ff"]
)
def test_damaged_y_strings_are_refused_every_time(genuine, tiny_model_path, y):
    data = with_latents(genuine, y=read_file(genuine).y_string[:-4] if y is None else y)
    errors = set()
    for _ in range(3):
        with pytest.raises(FormatError) as caught:
            decode(data, tiny_model_path)
        errors.add(str(caught.value))
    assert len(errors) == 1


def test_same_bytes_give_the_same_pixels(genuine, tiny_model_path):
    first, second = (np.asarray(decode(genuine, tiny_model_path)) for _ in range(2))
    assert np.array_equal(first, second)


def test_huge_invalid_metadata_gives_a_short_message(genuine, tiny_model_path):
    f = read_file(genuine)
    header = _head_payload(f.header, f.header.width, f.header.height)
    data = _raw_file(header, encode_latn(f.z_string, f.y_string), (Chunk(META, b"key\x00" + b"\xff" * 2**20),))
    with pytest.raises(MalformedError) as caught:
        psic.inspect(data)
    assert len(str(caught.value)) < 200
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def reachable_text(error: BaseException) -> str:
    """Everything an error keeps alive: messages, attributes, chained errors, locals of PSIC's frames."""
    parts, seen = [], set()
    pending = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        parts.append(repr(item.args) + repr(vars(item)))
        pending += [item.__context__, item.__cause__]
        traceback = item.__traceback__
        while traceback is not None:
            if traceback.tb_frame.f_code.co_filename.startswith(PACKAGE):
                parts.append(repr(traceback.tb_frame.f_locals))
            traceback = traceback.tb_next
    return "".join(parts)


@pytest.mark.parametrize("keyword", [KEYWORD + "!", "lone \ud800 surrogate", "x" * 2000])
def test_no_keyword_is_reachable_from_a_keyword_error(genuine, tiny_model_path, keyword):
    try:
        decode(genuine, tiny_model_path, key=keyword)
    except KeywordError as exc:
        error = exc
    gc.collect()
    text = reachable_text(error)
    assert keyword not in text and keyword[:12] not in text


def test_no_keyword_is_reachable_from_an_encoder_error(tiny_model_path):
    with pytest.raises(PsicError) as caught:
        psic.encode(np.zeros((8, 8, 3), np.uint8), model=str(tiny_model_path), keys=["secret one", "bad \ud800"])
    assert "secret one" not in reachable_text(caught.value)
