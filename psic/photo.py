"""What a photo carries besides its pixels, and what coding it in RGB loses.

* The ICC profile travels unchanged: without it a wide-gamut photo changes colour.
* EXIF travels without its location (the GPS block) unless the caller keeps it, without
  the orientation tag (the pixels are already turned upright, so a viewer must not turn
  them again) and without the embedded thumbnail, which would show the unprotected photo.
* Animation, 16-bit samples, transparency and greyscale are reported as one-line
  :class:`~psic.errors.ConversionWarning` s: the codec keeps one 8-bit RGB frame.
"""

from __future__ import annotations

from PIL import ExifTags, Image

from psic.imageio import SourceImage

EXIF_HEADER = b"Exif\x00\x00"  # what precedes the TIFF structure in a JPEG APP1 segment
_ORIENTATION = 0x0112
_GPS = int(ExifTags.IFD.GPSInfo)

GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def stored_exif(exif: Image.Exif | None, keep_gps: bool = False) -> bytes | None:
    """The EXIF to store: a TIFF structure without orientation, thumbnail and (by default) GPS."""
    if exif is None:
        return None
    cleaned = Image.Exif()
    for tag, value in exif.items():
        if tag == _ORIENTATION or (tag == _GPS and not keep_gps):
            continue
        cleaned[tag] = exif.get_ifd(tag) if tag in _SUB_IFDS else value
    if not len(cleaned):
        return None
    data = cleaned.tobytes()  # IFD0 and its sub-IFDs; IFD1 (the thumbnail) is not written
    return data.removeprefix(EXIF_HEADER)


_SUB_IFDS = frozenset(int(ifd) for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop))


def exif_for_pillow(stored: bytes) -> bytes:
    """Stored EXIF in the form Pillow's ``save(exif=...)`` expects (with the APP1 header)."""
    return EXIF_HEADER + stored


def has_gps(exif: bytes) -> bool:
    """Whether EXIF data (stored or Pillow form) holds a GPS block."""
    parsed = Image.Exif()
    parsed.load(exif if exif.startswith(EXIF_HEADER) else EXIF_HEADER + exif)
    return _GPS in parsed


def conversion_warnings(source: SourceImage) -> list[str]:
    """One sentence for each thing the 8-bit RGB codec does not keep."""
    notes = []
    if source.frames > 1:
        notes.append(f"the image is animated: only the first of its {source.frames} frames is coded")
    if source.bits > 8:
        notes.append(f"the image has {source.bits}-bit samples: they are coded with 8 bits")
    if source.alpha:
        notes.append("the image has transparency: it is composited over white")
    if source.mode in GREY_MODES:
        notes.append("the image is greyscale: it is coded in colour and decodes to greyscale")
    return notes
