"""The ``psic`` subcommands: encode, decode, info and models.

Each command parses options, calls :mod:`psic.api` and writes the result. ``psic.api``
is imported inside the commands so that loading the command line (``psic --help``)
stays cheap; the API itself imports torch only when pixels are coded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import click

from psic.cli import output
from psic.errors import FormatError, PsicError, PsicIOError, UsageError

# Pillow formats whose encoders drop information by default: re-compressing a protected
# decode with them may weaken the decoder-generated pattern.
LOSSY_FORMATS = frozenset({"JPEG", "MPO", "WEBP", "AVIF", "HEIF", "GIF", "PDF"})

_DEVICE_HELP = "Compute device: cpu, cuda or cuda:N. Default: cuda when available, else cpu."
_MODEL_HELP = "Registered model name (see 'psic models') or path to a .safetensors weights file."
_FORCE_HELP = "Overwrite OUT if it exists."


def _parse_meta(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
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


def _keywords(words: Iterable[str], key_files: Iterable[str]) -> list[str]:
    from psic.keys import read_key_file

    return [*words, *(read_key_file(path) for path in key_files)]


# --- encode -------------------------------------------------------------------------------


@click.command(short_help="Compress an image into a .psic file.")
@click.argument("input_name", metavar="IN")
@click.option("-o", "--output", "output_name", required=True, metavar="OUT", help="Output .psic file ('-' for stdout).")
@click.option(
    "-k",
    "--key",
    "words",
    multiple=True,
    metavar="WORD",
    help="Keyword that unlocks the full decode (repeatable). Visible in process lists: prefer --key-file.",
)
@click.option(
    "--key-file",
    "key_files",
    multiple=True,
    metavar="FILE",
    help="Read a keyword from the first line of FILE (repeatable).",
)
@click.option(
    "-q", "--quality", type=click.IntRange(min=1), help="Quality level 1-8 of the default model (default 3; higher: more bytes, better pictures)."
)
@click.option("-m", "--model", metavar="NAME|PATH", help=_MODEL_HELP)
@click.option("--device", metavar="cpu|cuda", help=_DEVICE_HELP)
@click.option(
    "--meta",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_meta,
    help="Store a text metadata entry in the file (repeatable).",
)
@click.option("-f", "--force", is_flag=True, help=_FORCE_HELP)
def encode(
    input_name: str,
    output_name: str,
    words: tuple[str, ...],
    key_files: tuple[str, ...],
    quality: int | None,
    model: str | None,
    device: str | None,
    metadata: dict[str, str],
    force: bool,
) -> None:
    """Compress the image IN (any format Pillow reads; '-' for stdin) into OUT.

    Without keywords, anyone can decode the full image with '--mode full'. With one or
    more keywords, the full decode needs one of them; the protected decode is always
    available.
    """
    from psic import api

    output.check_output(output_name, force=force)
    keywords = _keywords(words, key_files)
    with output.input_path(input_name) as path, output.status("encoding"):
        try:
            data = api.encode(path, model=model, quality=quality, keys=keywords, device=device, metadata=metadata)
        except PsicError as exc:
            if path != input_name:
                _hide_temporary_path(exc, path)
            raise
    output.write_output(output_name, data, force=force)


def _hide_temporary_path(exc: PsicError, path: str) -> None:
    """Say 'standard input' instead of the temporary copy's path in an error message."""
    if exc.args and isinstance(exc.args[0], str):
        message = exc.args[0].replace(repr(path), "standard input").replace(path, "standard input")
        exc.args = (message, *exc.args[1:])


# --- decode -------------------------------------------------------------------------------


@click.command(short_help="Decode a .psic file into an image.")
@click.argument("input_name", metavar="IN")
@click.option(
    "-o",
    "--output",
    "output_name",
    required=True,
    metavar="OUT",
    help="Output image; its extension picks the format ('-' for stdout, PNG unless --format).",
)
@click.option("-k", "--key", "word", metavar="WORD", help="Keyword for the full decode. Prefer --key-file.")
@click.option("--key-file", metavar="FILE", help="Read the keyword from the first line of FILE.")
@click.option(
    "--mode",
    type=click.Choice(["protected", "full"]),
    help="protected (default without a keyword) or full (default with a keyword).",
)
@click.option(
    "--format", "image_format", metavar="FORMAT", help="Image format (png, jpeg, ...) instead of OUT's extension."
)
@click.option("-m", "--model", metavar="NAME|PATH", help=_MODEL_HELP + " Default: the model named in the file.")
@click.option("--device", metavar="cpu|cuda", help=_DEVICE_HELP)
@click.option("-f", "--force", is_flag=True, help=_FORCE_HELP)
def decode(
    input_name: str,
    output_name: str,
    word: str | None,
    key_file: str | None,
    mode: str | None,
    image_format: str | None,
    model: str | None,
    device: str | None,
    force: bool,
) -> None:
    """Decode the .psic file IN ('-' for stdin) into the image OUT.

    Gives the protected image by default, the full image with a keyword the encoder
    registered, or with '--mode full' for a file encoded without keywords. A wrong
    keyword writes nothing.
    """
    from psic import api

    if word is not None and key_file is not None:
        raise click.UsageError("give --key or --key-file, not both")
    fmt = _output_format(output_name, image_format)
    output.check_output(output_name, force=force)
    keyword = _keywords((), (key_file,))[0] if key_file is not None else word
    data = output.read_input(input_name)
    with output.status("decoding"):
        image = api.decode(data, key=keyword, mode=mode, device=device, model=model)
    with output.atomic_output(output_name, force=force) as handle:
        try:
            image.save(handle, format=fmt)
        except OSError as exc:
            if exc.errno is not None:  # the file system failed
                raise PsicIOError(f"cannot write {output_name!r}: {exc.strerror or exc}") from None
            raise UsageError(f"cannot write this image as {fmt}: {exc}") from None
        except (ValueError, KeyError) as exc:  # Pillow: the format does not take this image
            raise UsageError(f"cannot write this image as {fmt}: {exc}") from None
    protected = mode == "protected" or (mode is None and keyword is None)
    if protected and fmt in LOSSY_FORMATS:
        output.warn(f"{fmt} is lossy; re-compression may weaken the protection (PNG keeps it intact)")


def _output_format(output_name: str, requested: str | None) -> str:
    """The Pillow format to write: --format, else OUT's extension, else PNG for stdout."""
    from PIL import Image

    Image.init()
    extensions = Image.registered_extensions()
    if requested is not None:
        fmt = extensions.get("." + requested.lower().lstrip("."), requested.upper())
    elif output.is_stdio(output_name):
        fmt = "PNG"
    else:
        extension = os.path.splitext(output_name)[1].lower()
        if not extension:
            raise UsageError(f"cannot tell the image format of {output_name!r}: give it an extension or use --format")
        if extension not in extensions:
            raise UsageError(f"unknown image extension {extension!r}: use e.g. .png, or --format")
        fmt = extensions[extension]
    if fmt not in Image.SAVE:
        raise UsageError(f"Pillow cannot write {fmt} images")
    return fmt


# --- info ---------------------------------------------------------------------------------


@click.command(short_help="Show a .psic file's header without decoding it.")
@click.argument("input_name", metavar="IN")
@click.option("--json", "as_json", is_flag=True, help="Print the header as a JSON object.")
def info(input_name: str, as_json: bool) -> None:
    """Show the header of the .psic file IN ('-' for stdin): size, model, keyword slots, metadata."""
    from psic import api

    details = api.inspect(output.read_input(input_name))
    if as_json:
        click.echo(json.dumps(details.to_dict(), indent=2, sort_keys=True))
        return
    name = "<stdin>" if output.is_stdio(input_name) else os.fsdecode(input_name)
    if details.key_slots:
        slots = f"{details.key_slots} (full decode needs one of the keywords)"
    else:
        slots = "0 (full decode open to anyone with --mode full)"
    rows = [
        ("file", name),
        ("format version", details.format_version),
        ("image", f"{details.width} x {details.height} (source mode {details.source_mode})"),
        ("model", f"{details.model} (weights sha256 {details.weights_sha256_prefix}...)"),
        ("keyword slots", slots),
        ("size", f"{details.file_bytes} bytes, {details.bpp:.4f} bpp"),
        ("latents", f"z {details.z_bytes} bytes, y {details.y_bytes} bytes"),
        ("index crc", details.index_crc),
    ]
    if details.metadata:
        rows.extend(("metadata" if i == 0 else "", f"{k} = {v}") for i, (k, v) in enumerate(details.metadata.items()))
    else:
        rows.append(("metadata", "(none)"))
    _print_table(rows)


# --- models -------------------------------------------------------------------------------


@click.command(short_help="List the installed models.")
@click.option("--json", "as_json", is_flag=True, help="Print the models as a JSON array.")
def models(as_json: bool) -> None:
    """List the models installed with this psic package."""
    from dataclasses import asdict

    from psic import api
    from psic.codec.registry import default_model

    entries = api.list_models()
    try:
        default = default_model().name
    except PsicError:
        default = None
    if as_json:
        click.echo(json.dumps([{**asdict(e), "default": e.name == default} for e in entries], indent=2))
        return
    if not entries:
        click.echo("no models are installed in this psic package; pass a weights file with --model PATH")
        return
    header = ("NAME", "QUALITY", "N/M", "SHA256", "DESCRIPTION")
    rows = [
        (
            e.name + (" (default)" if e.name == default else ""),
            f"1-{e.levels}" if e.levels else str(e.quality),
            f"{e.N}/{e.M}",
            e.sha256[:12],
            e.description,
        )
        for e in entries
    ]
    rows = [tuple(_printable(cell) for cell in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip())


# --- helpers ------------------------------------------------------------------------------


def _print_table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label.ljust(width)}  {_printable(value)}".rstrip())


def _printable(text: str) -> str:
    """Escape control characters, so that text from a file cannot drive the terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


ALL_COMMANDS = (encode, decode, info, models)
