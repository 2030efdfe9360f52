"""Turning user input into the codec's RGB array, and the codec's output back into images.

The codec works on C-contiguous ``HxWx3`` ``uint8`` arrays. :func:`read_source` accepts a
path, encoded image bytes, a binary file object, a ``PIL.Image.Image`` or a numpy array
and brings every supported layout to that form, recording what the source was (mode,
bit depth, frames, ICC profile, EXIF) so that callers can keep or report it.

Conversions, chosen so that the result is what a viewer would show:

* ``"RGB"`` is taken as is; ``"L"``, ``"1"``, ``"P"``, ``"CMYK"``, ``"YCbCr"``, ``"LAB"``,
  ``"HSV"``, ``"RGBX"`` and other modes Pillow can convert go through
  ``Image.convert("RGB")``.
* Modes with alpha (``"RGBA"``, ``"LA"``, ``"PA"``, ``"RGBa"``, ``"La"``) and ``"1"``,
  ``"L"``, ``"P"``, ``"RGB"`` images with a transparency key are composited over
  white with exact integer rounding: the decoded image has no alpha channel, and white
  is what a page shows behind a transparent image.
* 16-bit grey (``"I;16"``, ``"I;16B"``, ``"I;16L"``, ``"I;16N"``) is scaled to 8 bits as
  ``round(v / 257)`` (so 65535 -> 255 and 257*k -> k); ``"I"`` (32-bit) is first clipped
  to 0..65535. A transparency key on these modes is ignored.
* ``"F"`` (float) is clipped to [0, 255] and rounded; NaN becomes 0.
* Pillow itself opens 16-bit-per-channel RGB files as 8-bit ``"RGB"``.

Files are checked against the decompression-bomb limits (:data:`MAX_PIXELS`,
:data:`MAX_SIDE`) from their header, before any pixel data is decoded.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from psic.errors import InputImageError, PsicError, PsicIOError
from psic.format import MAX_PIXELS, MAX_SIDE

ImageInput = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | Image.Image | np.ndarray

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Modes whose "transparency" info (a colour or palette key) Pillow applies in convert("RGBA").
_KEYED_MODES = frozenset({"1", "L", "P", "RGB"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})

_EXPECTED = (
    "a path, image bytes, a binary file object, a PIL.Image.Image, "
    "or a uint8 numpy array of shape HxW, HxWx3 or HxWx4"
)


@dataclass(frozen=True)
class SourceImage:
    """The codec's RGB array and what the source had that RGB does not say."""

    rgb: np.ndarray
    mode: str  # the PIL mode before conversion to RGB
    bits: int = 8  # bits per sample of the source (16 for 16-bit PNG/TIFF)
    frames: int = 1  # frames of an animation (only the first is used)
    alpha: bool = False  # transparency (an alpha channel or a transparency key) was composited
    icc_profile: bytes | None = None
    exif: Image.Exif | None = None  # with the orientation already applied to the pixels


def read_source(image: ImageInput) -> SourceImage:
    """The input as a :class:`SourceImage`; the array never shares memory with the input.

    Files (paths, bytes, file objects) are opened with Pillow with EXIF orientation
    applied; PIL images are taken as given. For arrays the mode is "L", "RGB" or "RGBA" by
    shape.
    """
    if isinstance(image, (str, os.PathLike)):
        return _load_path(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _load_stream(io.BytesIO(image), "the image data")
    if isinstance(image, Image.Image):
        return _load_pil(image)
    if isinstance(image, np.ndarray):
        rgb, mode = _load_array(image)
        return SourceImage(rgb, mode, alpha=mode == "RGBA")
    if callable(getattr(image, "read", None)):
        return _load_stream(image, "the image file object")
    raise InputImageError(f"expected {_EXPECTED}; got {type(image).__name__}")


def load_image(image: ImageInput) -> tuple[np.ndarray, str]:
    """``(rgb, source_mode)`` of :func:`read_source`, for callers that need only the pixels."""
    source = read_source(image)
    return source.rgb, source.mode


def pad_to_multiple(rgb: np.ndarray, multiple: int) -> np.ndarray:
    """Pad bottom and right by edge replication so both sides are multiples of ``multiple``.

    The codec's downsampling needs aligned sizes; replicating edges (rather than zeros)
    adds no artificial edge for the codec to spend bits on. Returns ``rgb`` itself when
    already aligned.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be at least 1, got {multiple}")
    height, width = rgb.shape[:2]
    pad_bottom, pad_right = -height % multiple, -width % multiple
    if not pad_bottom and not pad_right:
        return rgb
    widths = ((0, pad_bottom), (0, pad_right)) + ((0, 0),) * (rgb.ndim - 2)
    return np.pad(rgb, widths, mode="edge")


def crop(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return the top-left ``height`` x ``width`` part as a C-contiguous array (undoes padding)."""
    if not (1 <= height <= rgb.shape[0] and 1 <= width <= rgb.shape[1]):
        raise ValueError(f"cannot crop {rgb.shape[0]}x{rgb.shape[1]} to {height}x{width}")
    return np.ascontiguousarray(rgb[:height, :width])


def to_pil(rgb: np.ndarray) -> Image.Image:
    """Wrap an HxWx3 uint8 array as an RGB ``PIL.Image.Image`` for saving."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputImageError(f"expected an HxWx3 uint8 array, got shape {rgb.shape} and dtype {rgb.dtype}")
    return Image.fromarray(np.ascontiguousarray(rgb))


def _load_path(path: str | os.PathLike[str]) -> SourceImage:
    """Open, bomb-check, orient and convert an image file."""
    name = os.fsdecode(path)
    try:
        with open(path, "rb") as handle:
            return _load_stream(handle, repr(name))
    except OSError as exc:  # only from open(): _decoding turns Pillow's OSErrors into InputImageError
        raise PsicIOError(f"cannot read {name!r}: {exc.strerror or exc}") from None


def _load_stream(handle: BinaryIO, what: str) -> SourceImage:
    """Open, bomb-check, orient and convert encoded image data."""
    with _decoding(what):
        opened = Image.open(handle)  # reads the header only
        _check_size(*opened.size)
        bits, frames = _sample_bits(opened), getattr(opened, "n_frames", 1)
        im = ImageOps.exif_transpose(opened)  # decodes the pixels
        return _source(im, bits, frames)


def _load_pil(im: Image.Image) -> SourceImage:
    """Size-check and convert a PIL image (which may still be lazily loaded)."""
    with _decoding("the PIL image"):
        _check_size(*im.size)
        return _source(im, _sample_bits(im), getattr(im, "n_frames", 1))


def _source(im: Image.Image, bits: int, frames: int) -> SourceImage:
    exif = im.getexif()
    return SourceImage(
        rgb=_to_rgb(im),
        mode=im.mode,
        bits=bits,
        frames=frames,
        alpha=_has_alpha(im),
        icc_profile=im.info.get("icc_profile") or None,
        exif=exif if len(exif) else None,
    )


def _sample_bits(im: Image.Image) -> int:
    """16 for sources with 16-bit samples, which Pillow may already have opened as 8-bit RGB."""
    if im.mode in _SIXTEEN_BIT_MODES:
        return 16
    rawmodes = [str(tile.args) for tile in getattr(im, "tile", None) or ()]
    return 16 if any(";16" in rawmode for rawmode in rawmodes) else 8


def _load_array(array: np.ndarray) -> tuple[np.ndarray, str]:
    """Validate a numpy image and bring it to a fresh HxWx3 array."""
    if array.dtype != np.uint8:
        raise InputImageError(f"a numpy image must have dtype uint8, got {array.dtype}")
    if array.ndim == 2:
        mode = "L"
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
    else:
        raise InputImageError(f"expected {_EXPECTED}; got an array of shape {array.shape}")
    _check_size(array.shape[1], array.shape[0])
    if mode == "L":
        return _grey_to_rgb(array), mode
    if mode == "RGBA":
        return _over_white(array), mode
    return np.array(array, order="C"), mode


@contextlib.contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Turn anything Pillow raises on malformed or oversized data into InputImageError.

    Pillow's many format plugins raise many exception types on bad input (OSError,
    ValueError, SyntaxError, struct.error, ...); for the user they all mean the same.
    The decompression-bomb warning is raised as an error as well.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except PsicError:
            raise
        except Image.UnidentifiedImageError:
            raise InputImageError(f"cannot decode {what}: not an image format Pillow reads, or corrupt") from None
        except Exception as exc:
            raise InputImageError(f"cannot decode {what} as an image: {exc}") from exc


def _check_size(width: int, height: int) -> None:
    """Refuse empty images and images over the side and pixel-count limits."""
    if width < 1 or height < 1:
        raise InputImageError(f"the image is empty ({width}x{height})")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InputImageError(f"the image is {width}x{height}; each side must be at most {MAX_SIDE}")
    if width * height > MAX_PIXELS:
        raise InputImageError(
            f"the image has {width * height} pixels, more than the limit of {MAX_PIXELS} "
            "(protection against decompression bombs)"
        )


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or (im.mode in _KEYED_MODES and "transparency" in im.info)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert a PIL image of any supported mode to an HxWx3 uint8 array."""
    if _has_alpha(im):
        rgba = im.convert("LA") if im.mode == "La" else im  # Pillow has no La -> RGBA
        return _over_white(np.asarray(rgba.convert("RGBA")))
    if im.mode in _SIXTEEN_BIT_MODES:
        return _grey_to_rgb(_sixteen_to_eight(np.asarray(im)))
    if im.mode == "F":
        return _grey_to_rgb(_float_to_eight(np.asarray(im)))
    # np.array, not np.asarray: Pillow exports read-only buffers, the codec wants its own copy.
    return np.array(im if im.mode == "RGB" else im.convert("RGB"))


def _sixteen_to_eight(grey: np.ndarray) -> np.ndarray:
    """Scale 0..65535 to 0..255 as round(v / 257); 257 is odd, so there are no ties."""
    values = np.clip(grey, 0, 65535).astype(np.uint32)
    return ((values + 128) // 257).astype(np.uint8)


def _float_to_eight(grey: np.ndarray) -> np.ndarray:
    """Clip floats to [0, 255] and round to the nearest integer (NaN -> 0)."""
    return np.rint(np.clip(np.nan_to_num(grey, nan=0.0), 0.0, 255.0)).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Repeat one channel three times into a new C-contiguous array."""
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA over white: round((c*a + 255*(255-a)) / 255), exactly, in integers.

    255 is odd, so the quotient is never exactly halfway and +127 rounds correctly; the
    largest intermediate, 255*255 + 127, fits in uint16.
    """
    colour = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    blended = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)
