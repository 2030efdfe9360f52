"""Option values shared by the coding commands, checked before any image or model is touched.

Everything here is cheap (no torch, no model, no pixels), so that a mistake on the command
line is reported at once with its exit code instead of after seconds of work.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import click

from psic.codec.effort import MAX_EFFORT
from psic.errors import FormatError, UsageError

# Pillow formats whose encoders drop information by default: re-compressing a protected
# decode with them may weaken the decoder-generated pattern.
LOSSY_FORMATS = frozenset({"JPEG", "MPO", "WEBP", "AVIF", "HEIF", "GIF", "PDF"})
# The extension a batch gives each output format; others take Pillow's first one.
_PREFERRED_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


effort_option = click.option(
    "-e", "--effort", type=click.IntRange(0, MAX_EFFORT), default=0, show_default=True,
    help=f"Encoder effort 0-{MAX_EFFORT}: above 0, each image's latent is refined for it (effort 2: about "
    "4 % fewer bytes for the same quality, tens of times the encode time). Needs a model with quality levels.",
)


def parse_meta(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs into a dict; keys must be unique and valid for the format."""
    from psic.format.validate import check_meta_entry

    metadata: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", ctx=ctx, param=param)
        if key in metadata:
            raise click.BadParameter(f"metadata key {key!r} is given twice", ctx=ctx, param=param)
        try:
            check_meta_entry(key, value)
        except FormatError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        metadata[key] = value
    return metadata


def keywords(words: Iterable[str], key_files: Iterable[str]) -> list[str]:
    """The keywords of ``--key`` and ``--key-file``, each checked as a keyword (exit 7 if unusable)."""
    from psic.keys import normalize_keyword, read_key_file

    found = [*words, *(read_key_file(path) for path in key_files)]
    for word in found:
        normalize_keyword(word)
    return found


def one_keyword(words: Iterable[str], key_files: Iterable[str]) -> str | None:
    """A decode's keyword: several different words are a mistake worth explaining, not the last one."""
    distinct = list(dict.fromkeys(keywords(words, key_files)))
    if len(distinct) > 1:
        raise UsageError(
            f"{len(distinct)} different keywords were given; a decode takes one (any one of the "
            "file's keywords unlocks it)"
        )
    return distinct[0] if distinct else None


def check_device(device: str | None) -> None:
    if device is not None and not _DEVICE.fullmatch(device):
        raise UsageError(f"invalid device {device!r}: use cpu, cuda or cuda:N")


def check_model(model: str | None, quality: int | None, effort: int = 0) -> None:
    """An unknown model name or a missing weights file fails here, before the input is read;
    so does an effort above 0 with a registered one-rate model (a weights file is checked when coding)."""
    from psic.codec.registry import find_model, resolve_model_path

    resolve_model_path(model, quality)
    entry = find_model(model) if effort and model is not None else None
    if entry is not None and not entry.levels:
        raise UsageError(f"effort above 0 needs a model with quality levels; {model} has one rate")


def _extensions() -> dict[str, str]:
    from PIL import Image

    Image.init()
    return Image.registered_extensions()


def image_format(output: str | None, requested: str | None) -> str:
    """The Pillow format to write: ``--format`` (which must agree with OUT's extension), else OUT's extension."""
    from PIL import Image

    extensions = _extensions()
    from_name = None
    if output is not None and output != "-":
        extension = os.path.splitext(output)[1].lower()
        if not extension and requested is None:
            raise UsageError(f"cannot tell the image format of {output!r}: give it an extension or use --format")
        if extension and extension not in extensions:
            raise UsageError(f"unknown image extension {extension!r}: use e.g. .png, or --format")
        from_name = extensions.get(extension)
    fmt = from_name or "PNG"
    if requested is not None:
        fmt = extensions.get("." + requested.lower().lstrip("."), requested.upper())
        if from_name is not None and from_name != fmt:
            raise UsageError(f"--format {requested} disagrees with the extension of {output!r} ({from_name})")
    if fmt not in Image.SAVE:
        raise UsageError(f"Pillow cannot write {fmt} images")
    return fmt


def extension_of(fmt: str) -> str:
    """The extension a batch gives outputs of format ``fmt``."""
    if fmt in _PREFERRED_EXTENSIONS:
        return _PREFERRED_EXTENSIONS[fmt]
    return next(ext for ext, name in _extensions().items() if name == fmt)


def is_image_extension(path: str) -> bool:
    """Whether Pillow would take ``path`` for an image by its extension (``.psic`` aside)."""
    extension = os.path.splitext(path)[1].lower()
    return extension != ".psic" and extension in _extensions()
