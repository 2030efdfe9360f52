"""The Pillow plugin: ``Image.open`` gives the protected decode, ``save`` encodes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import psic
from psic.errors import FormatError


@pytest.fixture(autouse=True)
def registered(tiny_model_path):
    psic.register_pillow(model=str(tiny_model_path))
    yield
    psic.register_pillow()


def test_save_and_open_give_the_protected_decode(tmp_path, photo, tiny_model_path):
    path = tmp_path / "photo.psic"
    Image.fromarray(photo).save(path, keys=["word"], quality=None)
    data = path.read_bytes()
    assert data.startswith(psic.format.SIGNATURE)
    with Image.open(path) as im:
        assert (im.format, im.size, im.mode) == ("PSIC", (90, 70), "RGB")
        assert im.info["psic_model"] == "tiny-test" and im.info["psic_key_slots"] == 1
        pixels = np.asarray(im)
    expected = psic.decode(data, model=str(tiny_model_path))
    assert np.array_equal(pixels, np.asarray(expected))
    assert not np.array_equal(pixels, np.asarray(psic.decode(data, model=str(tiny_model_path), key="word")))


def test_opening_reads_the_header_without_torch(tmp_path, photo, tiny_model_path):
    """A platform can list sizes and models of many files without loading torch."""
    path = tmp_path / "photo.psic"
    path.write_bytes(psic.encode(photo, model=str(tiny_model_path)))
    code = (
        "import sys, psic\nfrom PIL import Image\npsic.register_pillow()\n"
        f"im = Image.open({str(path)!r})\nassert im.format == 'PSIC' and im.size == (90, 70)\n"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_extension_and_mime_are_registered():
    assert Image.registered_extensions()[".psic"] == "PSIC"
    assert Image.MIME["PSIC"] == "image/x-psic"


def test_a_corrupt_psic_file_raises_the_typed_error(tmp_path):
    path = tmp_path / "bad.psic"
    path.write_bytes(psic.format.SIGNATURE + b"\x01\x00\x00garbage")
    with pytest.raises(FormatError):
        Image.open(path)


def test_greyscale_opens_as_l(tmp_path, tiny_model_path):
    path = tmp_path / "grey.psic"
    with pytest.warns(psic.errors.ConversionWarning):
        Image.new("L", (20, 10), 77).save(path)
    with Image.open(path) as im:
        assert im.mode == "L"
    assert np.asarray(psic.decode(path.read_bytes(), model=str(tiny_model_path))).shape == (10, 20)
