"""Constants of the ``.psic`` format, version 1: signature, limits, chunk types, tables.

Kept in one place so that the reader, the writer and the documentation agree.
"""

from __future__ import annotations

from types import MappingProxyType

#: First 8 bytes of every ``.psic`` file (high bit, name, CR LF, EOF, LF: catches text-mode damage).
SIGNATURE = b"\x89PSIC\r\n\x1a\n"

#: (major, minor) written by this library for files with a photo's ICC profile or EXIF;
#: files without them are written as (and are) version 1.0 files.
FORMAT_VERSION = (1, 1)
BASE_VERSION = (1, 0)

#: Largest image side and pixel count a reader accepts.
MAX_SIDE = 32768
MAX_PIXELS = 2**26

#: Most keyword slots a file may hold.
MAX_KEY_SLOTS = 16

#: Largest chunk payload (lengths are unsigned 32-bit values).
MAX_CHUNK_LENGTH = 2**32 - 1

MODEL_NAME_MAX = 64
MODEL_NAME_PATTERN = r"[a-z0-9][a-z0-9._-]*"
WEIGHTS_PREFIX_SIZE = 4
SALT_SIZE = 16
VERIFIER_SIZE = 32
META_KEY_MAX = 79

#: Largest ICC profile or EXIF block a reader inflates (zlib), against compression bombs.
MAX_INFLATED = 2**24

#: Key-derivation functions of a keyword slot.
KDF_SCRYPT = 1

HEAD = b"HEAD"
KEYS = b"KEYS"
META = b"meta"
ICCP = b"iccp"
EXIF = b"exif"
LATN = b"LATN"
IEND = b"IEND"

#: Source-mode codes: the PIL mode of the input image before its conversion to RGB.
OTHER_MODE = "other"
OTHER_MODE_CODE = 255
SOURCE_MODES: MappingProxyType[int, str] = MappingProxyType(
    {
        0: "RGB",
        1: "L",
        2: "LA",
        3: "RGBA",
        4: "P",
        5: "PA",
        6: "1",
        7: "I;16",
        8: "I",
        9: "F",
        10: "CMYK",
        11: "YCbCr",
        12: "LAB",
        13: "HSV",
        14: "RGBX",
        OTHER_MODE_CODE: OTHER_MODE,
    }
)
_MODE_CODES = {name: code for code, name in SOURCE_MODES.items()}


def source_mode_code(mode: str) -> int:
    """Code written for a PIL mode; modes outside the table are recorded as 255 ("other")."""
    return _MODE_CODES.get(mode, OTHER_MODE_CODE)
