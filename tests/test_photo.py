"""Photo metadata and inputs as photographers and platforms hand them over.

A JPEG with an ICC profile, EXIF and GPS comes back with the profile and EXIF but
without GPS; what 8-bit RGB cannot hold is reported; every input type is accepted.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

import psic
from psic.errors import ConversionWarning, InputImageError, PsicIOError
from psic.photo import has_gps

GPS = int(ExifTags.IFD.GPSInfo)


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """One profile per test run: a new one would carry another creation time."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhotoMaker"  # Make
    exif[0x0110] = "Model 7"  # Model
    exif[0x0112] = orientation
    exif[GPS] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    return exif


@pytest.fixture
def camera_jpeg(photo) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=95, icc_profile=srgb_profile(), exif=exif_with_gps())
    return buffer.getvalue()


def round_trip(data: bytes, model, **kwargs) -> Image.Image:
    return psic.decode(psic.encode(data, model=str(model), **kwargs), model=str(model))


def test_icc_and_exif_come_back_without_gps(camera_jpeg, tiny_model_path):
    decoded = round_trip(camera_jpeg, tiny_model_path)
    assert decoded.info["icc_profile"] == srgb_profile()
    exif = Image.Exif()
    exif.load(decoded.info["exif"])
    assert exif[0x010F] == "PhotoMaker" and exif[0x0110] == "Model 7"
    assert GPS not in exif
    saved = io.BytesIO()
    decoded.save(saved, "PNG", exif=decoded.info["exif"])  # Pillow takes the ICC profile from im.info itself
    with Image.open(saved) as png:
        assert png.info["icc_profile"] == srgb_profile()
        assert png.getexif()[0x010F] == "PhotoMaker"


def test_gps_is_kept_on_request(camera_jpeg, tiny_model_path):
    decoded = round_trip(camera_jpeg, tiny_model_path, keep_gps=True)
    assert has_gps(decoded.info["exif"])


def test_metadata_can_be_dropped(camera_jpeg, tiny_model_path):
    decoded = round_trip(camera_jpeg, tiny_model_path, icc=False, exif=False)
    assert "icc_profile" not in decoded.info and "exif" not in decoded.info
    assert psic.inspect(psic.encode(camera_jpeg, model=str(tiny_model_path), icc=False, exif=False)).format_version == "1.0"


def test_orientation_is_applied_to_pixels_and_removed_from_exif(photo, tiny_model_path):
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", exif=exif_with_gps(orientation=6))  # rotate 90 degrees to view
    decoded = round_trip(buffer.getvalue(), tiny_model_path)
    assert decoded.size == (photo.shape[0], photo.shape[1])
    exif = Image.Exif()
    exif.load(decoded.info["exif"])
    assert 0x0112 not in exif


def exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """Little-endian EXIF: IFD0 with Make, then IFD1 pointing at a JPEG thumbnail."""
    make = b"Cam\0"
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, 4, int.from_bytes(make, "little"))
    ifd1_offset = 8 + len(ifd0) + 4
    ifd1_size = 2 + 2 * 12 + 4
    thumb_offset = ifd1_offset + ifd1_size
    ifd1 = struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_offset)
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd0 + struct.pack("<I", ifd1_offset) + ifd1 + thumbnail


def test_thumbnail_of_the_unprotected_photo_is_not_kept(photo, tiny_model_path):
    thumbnail = io.BytesIO()
    Image.fromarray(photo[:16, :16]).save(thumbnail, "JPEG")
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", exif=b"Exif\0\0" + exif_with_thumbnail(thumbnail.getvalue()))
    with Image.open(buffer) as source:
        assert source.getexif().get_ifd(ExifTags.IFD.IFD1)  # the source does carry a thumbnail
    decoded = round_trip(buffer.getvalue(), tiny_model_path)
    assert thumbnail.getvalue()[:64] not in decoded.info["exif"]
    kept = Image.Exif()
    kept.load(decoded.info["exif"])
    assert kept[0x010F] == "Cam" and not kept.get_ifd(ExifTags.IFD.IFD1)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("RGBA", (20, 20), (1, 2, 3, 100)), "transparency"),
        (Image.new("I;16", (20, 20), 1000), "16-bit"),
        (Image.new("L", (20, 20), 9), "greyscale"),
    ],
)
def test_conversions_are_warned_about(image, expected, tiny_model_path):
    with pytest.warns(ConversionWarning) as caught:
        psic.encode(image, model=str(tiny_model_path))
    assert any(expected in str(warning.message) for warning in caught)


def test_animation_is_warned_about(tiny_model_path):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.warns(ConversionWarning, match="first of its 3 frames"):
        psic.encode(buffer.getvalue(), model=str(tiny_model_path))


def test_plain_rgb_raises_no_warning(photo, tiny_model_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psic.encode(photo, model=str(tiny_model_path))


def test_inputs_as_path_bytes_file_object_pil_and_array_give_the_same_file(photo, tmp_path, tiny_model_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    data = path.read_bytes()
    model = str(tiny_model_path)
    with open(path, "rb") as handle:
        from_file_object = psic.encode(handle, model=model)
    results = {
        psic.encode(path, model=model),
        psic.encode(str(path), model=model),
        psic.encode(data, model=model),
        psic.encode(memoryview(data), model=model),
        from_file_object,
        psic.encode(Image.open(path), model=model),
        psic.encode(photo, model=model),
    }
    assert len(results) == 1
    encoded = results.pop()
    with open(tmp_path / "x.psic", "wb") as handle:
        handle.write(encoded)
    with open(tmp_path / "x.psic", "rb") as handle:
        assert psic.decode(handle, model=model).tobytes() == psic.decode(encoded, model=model).tobytes()


def test_bytes_that_are_no_image_are_an_input_error(tiny_model_path):
    with pytest.raises(InputImageError, match="not an image format"):
        psic.encode(b"no image here", model=str(tiny_model_path))


def test_text_file_object_is_refused(tmp_path):
    path = tmp_path / "x.psic"
    path.write_bytes(b"abc")
    with open(path, encoding="latin-1") as handle, pytest.raises(PsicIOError, match="binary mode"):
        psic.decode(handle)


def test_protect_gives_the_protected_decode_and_the_file(photo, tiny_model_path):
    model = str(tiny_model_path)
    result = psic.protect(photo, model=model, keys=["owner word"])
    assert result.image.tobytes() == psic.decode(result.data, model=model).tobytes()
    full = psic.decode(result.data, model=model, key="owner word")
    assert full.tobytes() != result.image.tobytes()
    assert np.asarray(result.image).shape == photo.shape
