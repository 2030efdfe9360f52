"""The Python API as a user calls it: encode, decode, inspect."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import psic
from psic.errors import (
    ConversionWarning,
    KeyRequiredError,
    ModelNotAvailableError,
    PsicError,
    UsageError,
    WrongKeyError,
)
from psic.format import SIGNATURE


@pytest.fixture
def encoded(photo, tiny_model_path) -> bytes:
    return psic.encode(photo, model=str(tiny_model_path), keys=["open sesame"])


def decode(data, tiny_model_path, **kwargs) -> np.ndarray:
    return np.asarray(psic.decode(data, model=str(tiny_model_path), **kwargs))


def test_round_trip_keeps_size_and_gives_rgb(encoded, tiny_model_path):
    image = psic.decode(encoded, model=str(tiny_model_path))
    assert image.mode == "RGB"
    assert image.size == (90, 70)


def test_protected_is_default_and_key_gives_full(encoded, tiny_model_path):
    protected = decode(encoded, tiny_model_path)
    explicit = decode(encoded, tiny_model_path, mode="protected")
    full = decode(encoded, tiny_model_path, key="open sesame")
    assert np.array_equal(protected, explicit)
    assert protected.shape == full.shape
    assert not np.array_equal(protected, full)


def test_wrong_key_is_refused(encoded, tiny_model_path):
    with pytest.raises(WrongKeyError) as info:
        decode(encoded, tiny_model_path, key="open sesamE")
    assert "open sesam" not in str(info.value)


def test_full_mode_without_key_is_refused_when_slots_exist(encoded, tiny_model_path):
    with pytest.raises(KeyRequiredError):
        decode(encoded, tiny_model_path, mode="full")


def test_file_without_slots_decodes_full_only_on_request(photo, tiny_model_path):
    data = psic.encode(photo, model=str(tiny_model_path))
    protected = decode(data, tiny_model_path)
    full = decode(data, tiny_model_path, mode="full")
    assert not np.array_equal(protected, full)
    with pytest.raises(WrongKeyError):
        decode(data, tiny_model_path, key="anything")


def test_any_of_several_keys_unlocks(photo, tiny_model_path):
    data = psic.encode(photo, model=str(tiny_model_path), keys=["alpha", "beta"])
    assert np.array_equal(decode(data, tiny_model_path, key="alpha"), decode(data, tiny_model_path, key="beta"))


def test_single_string_is_one_keyword_not_letters(photo, tiny_model_path):
    data = psic.encode(photo, model=str(tiny_model_path), keys="word")
    assert psic.inspect(data).key_slots == 1
    decode(data, tiny_model_path, key="word")


def test_unknown_mode_is_a_usage_error(encoded, tiny_model_path):
    with pytest.raises(UsageError):
        decode(encoded, tiny_model_path, mode="sharp")


def test_input_kinds_give_identical_files(photo, tiny_model_path, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    model = str(tiny_model_path)
    from_array = psic.encode(photo, model=model)
    assert psic.encode(Image.fromarray(photo), model=model) == from_array
    assert psic.encode(path, model=model) == from_array
    assert psic.encode(str(path), model=model) == from_array


def test_decode_accepts_a_path(encoded, tiny_model_path, tmp_path):
    path = tmp_path / "photo.psic"
    path.write_bytes(encoded)
    assert np.array_equal(decode(path, tiny_model_path), decode(encoded, tiny_model_path))


@pytest.mark.parametrize("size", [(1, 1), (64, 64), (65, 129), (200, 3)])
def test_any_size_round_trips(tiny_model_path, size):
    height, width = size
    image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = psic.encode(image, model=str(tiny_model_path))
    assert decode(data, tiny_model_path).shape == (height, width, 3)


def test_grayscale_source_mode_is_recorded_and_decodes_to_grayscale(tiny_model_path):
    gray = Image.fromarray(np.full((20, 30), 128, dtype=np.uint8), mode="L")
    with pytest.warns(ConversionWarning, match="greyscale"):
        data = psic.encode(gray, model=str(tiny_model_path))
    assert psic.inspect(data).source_mode == "L"
    assert psic.decode(data, model=str(tiny_model_path)).mode == "L"


def test_inspect_reports_header_without_decoding(encoded, tiny_model_path):
    info = psic.inspect(encoded)
    assert (info.width, info.height) == (90, 70)
    assert info.model == "tiny-test"
    assert info.key_slots == 1
    assert info.file_bytes == len(encoded)
    assert info.bpp == pytest.approx(len(encoded) * 8 / (90 * 70))
    assert info.to_dict()["weights_sha256_prefix"] == info.weights_sha256_prefix


def test_metadata_round_trips(photo, tiny_model_path):
    data = psic.encode(photo, model=str(tiny_model_path), metadata={"author": "Ada"})
    assert psic.inspect(data).metadata == {"author": "Ada"}


def test_bad_metadata_is_a_usage_error(photo, tiny_model_path):
    with pytest.raises(UsageError):
        psic.encode(photo, model=str(tiny_model_path), metadata={"": "empty key"})


def test_unregistered_model_is_not_available(encoded):
    with pytest.raises(ModelNotAvailableError):
        psic.decode(encoded)


def test_other_weights_with_same_name_are_refused(encoded, other_tiny_model_path):
    with pytest.raises(ModelNotAvailableError):
        psic.decode(encoded, model=str(other_tiny_model_path))


def test_no_default_model_is_a_clear_error(photo):
    from psic.codec.registry import registered_models

    if registered_models():
        pytest.skip("this package ships a default model")
    with pytest.raises(ModelNotAvailableError, match="no default model"):
        psic.encode(photo)


def test_truncation_at_every_offset_raises_psic_errors(photo, tiny_model_path):
    data = psic.encode(photo[:20, :20], model=str(tiny_model_path), keys=["k"])
    for end in range(len(data)):
        with pytest.raises(PsicError):
            psic.decode(data[:end], model=str(tiny_model_path))


def test_random_bit_flips_raise_psic_errors(photo, tiny_model_path):
    data = psic.encode(photo[:20, :20], model=str(tiny_model_path))
    minor_version_offset = len(SIGNATURE) + 1  # a higher minor version is valid by design
    rng = random.Random(7)
    for _ in range(300):
        corrupt = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            offset = rng.choice([i for i in range(len(data)) if i != minor_version_offset])
            corrupt[offset] ^= 1 << rng.randrange(8)
        with pytest.raises(PsicError):
            psic.decode(bytes(corrupt), model=str(tiny_model_path), mode="full")


def test_import_does_not_load_torch():
    code = "import sys, psic; psic.inspect; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quality_picks_the_installed_model_of_that_quality():
    from psic.codec.registry import default_model, registered_models, resolve_model_path

    default = default_model()
    if default.quality is None:
        pytest.skip("the default model is a gain network: every quality is one of its levels")
    for entry in registered_models():
        if entry.quality is not None and entry.architecture == default.architecture:
            assert resolve_model_path(None, entry.quality) == (entry.path, entry.sha256)
    missing = next(q for q in range(1, 9) if all(m.quality != q for m in registered_models()))
    with pytest.raises(UsageError, match=f"no installed model has quality {missing}"):
        resolve_model_path(None, missing)
