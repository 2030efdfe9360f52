"""A Pillow plugin for ``.psic`` files, registered on request with :func:`register_pillow`.

After ``psic.register_pillow()``, ``Image.open("x.psic")`` gives the *protected* decode
(format ``"PSIC"``; the header, ICC profile and EXIF in ``im.info``), and
``im.save("x.psic", keys=[...], quality=...)`` encodes. As in Pillow's own plugins,
opening reads only the header; the pixels are decoded (and torch imported) on
``load()``. Importing this module imports neither torch nor a model.
"""

from __future__ import annotations

import os
from typing import IO, Any

from PIL import Image, ImageFile

from psic import photo
from psic.format import SIGNATURE, PsicFile, read_file

FORMAT = "PSIC"
MIME = "image/x-psic"
EXTENSION = ".psic"
_SAVE_OPTIONS = ("keys", "quality", "model", "device", "effort", "metadata", "keep_gps")
_defaults: dict[str, Any] = {}  # model and device given to register_pillow()


def _accept(prefix: bytes) -> bool:
    return prefix[: len(SIGNATURE)] == SIGNATURE[: len(prefix)] and len(prefix) >= 4


class PsicImageFile(ImageFile.ImageFile):
    """A ``.psic`` file opened by Pillow: header now, protected pixels on ``load()``."""

    format = FORMAT
    format_description = "PSIC privacy-shielded image (protected decode)"

    def _open(self) -> None:
        assert self.fp is not None
        self._data = self.fp.read()
        parsed = read_file(self._data)  # a FormatError here is more useful than "cannot identify"
        header = parsed.header
        self._size = (header.width, header.height)
        self._mode = "L" if header.source_mode in photo.GREY_MODES else "RGB"
        self.info.update(_info(parsed))
        self.tile = []
        self._pending = True

    def load(self) -> Any:
        if self._pending:
            from psic.api import decode

            self.im = decode(self._data, **_defaults).im
            self._pending = False
        return Image.Image.load(self)


def _info(parsed: PsicFile) -> dict[str, Any]:
    header = parsed.header
    assert parsed.version is not None
    info: dict[str, Any] = {
        "psic_version": "{}.{}".format(*parsed.version),
        "psic_model": header.model_name,
        "psic_source_mode": header.source_mode,
        "psic_key_slots": len(parsed.key_slots),
        "psic_metadata": dict(parsed.metadata),
    }
    if parsed.icc_profile:
        info["icc_profile"] = parsed.icc_profile
    if parsed.exif:
        info["exif"] = photo.exif_for_pillow(parsed.exif)
    return info


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``im.save(..., format="PSIC", keys=..., quality=..., model=..., device=..., effort=..., metadata=...)``."""
    from psic.api import encode

    options = {**_defaults, **{name: im.encoderinfo[name] for name in _SAVE_OPTIONS if name in im.encoderinfo}}
    fp.write(encode(im, **options))


def register_pillow(*, model: str | os.PathLike[str] | None = None, device: str | None = None) -> None:
    """Teach Pillow to open and save ``.psic`` files (calling it again replaces the settings).

    ``model`` (a registered name or a weights file) and ``device`` apply to every open and
    save; by default a file is decoded with the installed model it names.
    """
    _defaults.clear()
    _defaults.update({name: value for name, value in (("model", model), ("device", device)) if value is not None})
    Image.register_open(FORMAT, PsicImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
