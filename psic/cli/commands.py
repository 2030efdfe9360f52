"""The ``psic`` subcommands that only read: info and models (the coding commands are in
:mod:`psic.cli.coding_commands`).

``psic.api`` is imported inside the commands so that loading the command line
(``psic --help``) stays cheap; neither command imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import click

from psic.cli import output
from psic.cli.coding_commands import ALL_CODING_COMMANDS
from psic.errors import PsicError

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
    photo_parts = [f"ICC profile {details.icc_profile_bytes} bytes"] if details.icc_profile_bytes else []
    photo_parts += [f"EXIF {details.exif_bytes} bytes"] if details.exif_bytes else []
    rows.append(("photo metadata", ", ".join(photo_parts) or "(none)"))
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
    table = [tuple(_printable(cell) for cell in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip())


# --- helpers ------------------------------------------------------------------------------


def _print_table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label.ljust(width)}  {_printable(value)}".rstrip())


def _printable(text: str) -> str:
    """Escape control characters, so that text from a file cannot drive the terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


ALL_COMMANDS = (*ALL_CODING_COMMANDS, info, models)
