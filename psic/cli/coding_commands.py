"""``psic encode``, ``psic decode`` and ``psic protect``: one file with -o, many with --out-dir.

Each command checks everything it can before any image or model is touched (options,
inputs, keywords, model name, output format and extension, existing outputs), then runs
its jobs through :mod:`psic.cli.batch`. With ``-o`` a failure exits with its own code;
with ``--out-dir`` failing files are reported and counted, and the exit status is their
common code (or 11 when they failed for different reasons).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import click

from psic.cli import batch, jobs, options, output
from psic.cli.progress import Reporter
from psic.errors import PsicIOError, UsageError

_DEVICE_HELP = "Compute device: cpu, cuda or cuda:N. Default: cuda when available, else cpu."
_MODEL_HELP = "Registered model name (see 'psic models') or path to a .safetensors weights file."

F = Callable[..., Any]


def _common(fn: F) -> F:
    """Options every coding command takes, outermost first in --help."""
    for decorator in reversed(
        [
            click.option("-o", "--output", "output_name", metavar="OUT", help="Output file ('-' for stdout); one IN only."),
            click.option("-O", "--out-dir", metavar="DIR", help="Write one output per input into DIR (created if missing)."),
            click.option("-j", "--jobs", "workers", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Files coded in parallel (worker processes) with --out-dir."),
            click.option("-m", "--model", metavar="NAME|PATH", help=_MODEL_HELP),
            click.option("--device", metavar="cpu|cuda", help=_DEVICE_HELP),
            click.option("-f", "--force", is_flag=True, help="Overwrite outputs that exist."),
            click.option("--quiet", is_flag=True, help="No progress bar, no warnings, no summary (errors still show)."),
            click.option("-v", "--verbose", is_flag=True, help="One line per finished file."),
        ]
    ):
        fn = decorator(fn)
    return fn


def _key_options(fn: F) -> F:
    fn = click.option("--key-file", "key_files", multiple=True, metavar="FILE",
                      help="Read a keyword from the first line of FILE (repeatable).")(fn)
    return click.option("-k", "--key", "words", multiple=True, metavar="WORD",
                        help="Keyword (repeatable on encode). Visible in process lists: prefer --key-file.")(fn)


_keep_gps = click.option("--keep-gps", is_flag=True, help="Keep the EXIF GPS location (stripped by default).")


def _quality_option(fn: F) -> F:
    return click.option("-q", "--quality", type=click.IntRange(1, 8),
                        help="Quality level 1-8 (higher: more bytes, better pictures). Default 3.")(fn)


# --- encode -------------------------------------------------------------------------------


@click.command(short_help="Compress images into .psic files.")
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@_common
@_key_options
@_quality_option
@options.effort_option
@click.option("--meta", "metadata", multiple=True, metavar="KEY=VALUE", callback=options.parse_meta,
              help="Store a text metadata entry in the file (repeatable).")
@click.option("--no-icc", is_flag=True, help="Do not keep the ICC colour profile.")
@click.option("--no-exif", is_flag=True, help="Do not keep EXIF.")
@_keep_gps
def encode(inputs: tuple[str, ...], output_name: str | None, out_dir: str | None, workers: int, model: str | None,
           device: str | None, force: bool, quiet: bool, verbose: bool, words: tuple[str, ...],
           key_files: tuple[str, ...], quality: int | None, effort: int, metadata: dict[str, str], no_icc: bool,
           no_exif: bool, keep_gps: bool) -> None:
    """Compress each image IN (any format Pillow reads; a folder: its images, recursively; '-': stdin).

    Without keywords, anyone can decode the full image with '--mode full'. With one or
    more keywords, the full decode needs one of them; the protected decode is always
    available. The ICC profile and EXIF are kept, EXIF without GPS unless --keep-gps.
    """
    settings = jobs.EncodeSettings(
        keys=tuple(options.keywords(words, key_files)), quality=quality, model=model, device=device, effort=effort,
        metadata=metadata, icc=not no_icc, exif=not no_exif, keep_gps=keep_gps, force=force,
    )
    options.check_device(device)
    options.check_model(model, quality, effort)
    if output_name is not None and options.is_image_extension(output_name):
        raise UsageError(f"OUT {output_name!r} has an image extension, but encode writes a .psic file")
    planned = _plan(inputs, output_name, out_dir, ".psic", options.is_image_extension, force)
    _run(jobs.encode_file, planned, settings, workers, "encoded", quiet, verbose, single=out_dir is None)


# --- decode -------------------------------------------------------------------------------


@click.command(short_help="Decode .psic files into images.")
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@_common
@_key_options
@click.option("--mode", type=click.Choice(["protected", "full"]),
              help="protected (default without a keyword) or full (default with a keyword).")
@click.option("--format", "image_format", metavar="FORMAT",
              help="Image format (png, jpeg, ...). Default: OUT's extension; PNG for stdout and --out-dir.")
def decode(inputs: tuple[str, ...], output_name: str | None, out_dir: str | None, workers: int, model: str | None,
           device: str | None, force: bool, quiet: bool, verbose: bool, words: tuple[str, ...],
           key_files: tuple[str, ...], mode: str | None, image_format: str | None) -> None:
    """Decode each .psic file IN (a folder: its .psic files, recursively; '-': stdin) into an image.

    Gives the protected image by default, the full image with a keyword the encoder
    registered, or with '--mode full' for a file encoded without keywords. A wrong
    keyword writes nothing. The file's ICC profile and EXIF are written back.
    """
    fmt = options.image_format(output_name, image_format)
    settings = jobs.DecodeSettings(
        keyword=options.one_keyword(words, key_files), mode=mode, model=model, device=device, fmt=fmt, force=force
    )
    options.check_device(device)
    if model is not None:
        options.check_model(model, None)
    planned = _plan(inputs, output_name, out_dir, options.extension_of(fmt), _is_psic, force)
    _run(jobs.decode_file, planned, settings, workers, "decoded", quiet, verbose, single=out_dir is None)


def _is_psic(path: str) -> bool:
    return path.lower().endswith(".psic")


# --- protect ------------------------------------------------------------------------------


@click.command(short_help="Turn photos into their protected versions in one step.")
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@_common
@_key_options
@_quality_option
@options.effort_option
@click.option("--format", "image_format", metavar="FORMAT",
              help="Image format (png, jpeg, ...). Default: OUT's extension; PNG for stdout and --out-dir.")
@click.option("--psic", "psic_name", metavar="FILE", help="Also write the .psic file (the owner's copy); one IN only.")
@_keep_gps
def protect(inputs: tuple[str, ...], output_name: str | None, out_dir: str | None, workers: int, model: str | None,
            device: str | None, force: bool, quiet: bool, verbose: bool, words: tuple[str, ...],
            key_files: tuple[str, ...], quality: int | None, effort: int, image_format: str | None,
            psic_name: str | None, keep_gps: bool) -> None:
    """Write the protected version of each image IN, in the format OUT's extension names.

    Publish the protected image; keep the .psic file (--psic, with --key) to recover the
    full image later. Lossy formats (JPEG, WebP, ...) work, with a warning: re-compression
    may weaken the protection.
    """
    fmt = options.image_format(output_name, image_format)
    keys = tuple(options.keywords(words, key_files))
    if keys and psic_name is None:
        raise UsageError("--key registers a keyword in the .psic file: give --psic FILE to keep it")
    if psic_name is not None:
        if out_dir is not None:
            raise UsageError("--psic names one file: use it with -o OUT, not --out-dir")
        if options.is_image_extension(psic_name):
            raise UsageError(f"--psic {psic_name!r} has an image extension, but it names a .psic file")
        output.check_output(psic_name, force=force)
    settings = jobs.ProtectSettings(
        keys=keys, quality=quality, model=model, device=device, effort=effort, keep_gps=keep_gps, fmt=fmt,
        psic_target=psic_name, force=force,
    )
    options.check_device(device)
    options.check_model(model, quality, effort)
    planned = _plan(inputs, output_name, out_dir, options.extension_of(fmt), options.is_image_extension, force)
    _run(jobs.protect_file, planned, settings, workers, "protected", quiet, verbose, single=out_dir is None)


# --- shared -------------------------------------------------------------------------------


def _plan(inputs: Sequence[str], output_name: str | None, out_dir: str | None, extension: str,
          wanted: Callable[[str], bool], force: bool) -> list[batch.Job]:
    """The jobs, with every input and output checked before any work."""
    if (output_name is None) == (out_dir is None):
        raise UsageError("give -o OUT (one input) or --out-dir DIR (any number of inputs)")
    if output_name is not None:
        if len(inputs) > 1:
            raise UsageError(f"{len(inputs)} inputs need --out-dir DIR, not -o")
        name = inputs[0]
        if os.path.isdir(name):
            raise UsageError(f"{output.display_name(name)} is a folder: use --out-dir DIR")
        if not output.is_stdio(name) and not os.path.isfile(name):
            raise PsicIOError(f"cannot read {output.display_name(name)}: No such file or directory")
        output.check_output(output_name, force=force)
        return [batch.Job(name, output_name)]
    assert out_dir is not None
    planned = batch.plan(batch.expand_inputs(inputs, wanted), out_dir, extension)
    batch.check_outputs(planned, out_dir, force=force)
    return planned


def _run(work: batch.Work, planned: list[batch.Job], settings: Any, workers: int, verb: str, quiet: bool,
         verbose: bool, *, single: bool) -> None:
    if single:
        _run_single(work, planned[0], settings, quiet, verbose)
        return
    reporter = Reporter(len(planned), verb, quiet=quiet, verbose=verbose)
    for outcome in batch.run(work, planned, settings, workers):
        reporter.add(outcome)
    error = reporter.finish().exit_error()
    if error is not None:
        raise error


def _run_single(work: batch.Work, job: batch.Job, settings: Any, quiet: bool, verbose: bool) -> None:
    """One file: its error is the command's error, with its own exit code."""
    import warnings

    with warnings.catch_warnings(record=True) as caught, output.status("working"):
        warnings.simplefilter("always")
        written = work(job, settings)
    if not quiet:
        for warning in caught:
            output.warn(str(warning.message))
    if verbose:
        click.echo(f"psic: {job.source} -> {job.target} ({written} bytes)", err=True)


ALL_CODING_COMMANDS = (encode, decode, protect)
