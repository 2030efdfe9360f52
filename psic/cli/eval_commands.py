"""The ``psic eval`` commands: rate-distortion against baseline codecs, and privacy (retrieval, ASR).

Evaluation modules (and so torch) are imported inside the commands, keeping ``psic --help`` cheap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import click

from psic.cli import options, output
from psic.errors import PsicIOError, UsageError

_MODEL_HELP = "Registered model name or path to a .safetensors weights file. Default: the default model."
_DEVICE_HELP = "Compute device: cpu, cuda or cuda:N. Default: cuda when available, else cpu."
_JSON_HELP = "Also write the full results (per image, per target) as JSON to OUT ('-' for stdout)."
_FORCE_HELP = "Overwrite OUT if it exists."


@click.group(name="eval", short_help="Evaluate a model: rate-distortion and privacy.")
def eval_group() -> None:
    """Benchmarks of a PSIC model (long-running: minutes to hours on a CPU)."""


@eval_group.command(short_help="Rate-distortion of PSIC against JPEG, WebP and AVIF.")
@click.option("-m", "--model", metavar="NAME|PATH", help=_MODEL_HELP)
@click.option("-q", "--quality", "qualities", type=click.IntRange(min=1), multiple=True,
              help="Quality level to evaluate (repeatable). Default: every level of the model.")
@click.option(
    "--images",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of test images (e.g. CID22 val).",
)
@options.effort_option
@click.option("--device", metavar="cpu|cuda", help=_DEVICE_HELP)
@click.option("--json", "json_name", metavar="OUT", help=_JSON_HELP)
@click.option("--plot", "plot_name", metavar="PNG", help="Also write the RD curves as a PNG plot.")
@click.option("-f", "--force", is_flag=True, help=_FORCE_HELP)
def rd(model: str | None, qualities: tuple[int, ...], images: str, effort: int, device: str | None,
       json_name: str | None, plot_name: str | None, force: bool) -> None:
    """Encode every image in --images to a real .psic file at each level and decode it both ways; code each
    image with JPEG, WebP and AVIF at the largest quality whose file is no larger than PSIC's (per image), and
    print the mean bpp and PSNR (8-bit RGB) per level. Over the ladder, print the BD-rate of PSIC's full and
    protected curves against each baseline's average fixed-quality curve (negative: PSIC needs fewer bits).
    """
    from psic.datasets import image_folder
    from psic.eval import rate_distortion as rdm
    from psic.eval.bd_rate import format_bd_rate

    for name in (json_name, plot_name):
        if name is not None:
            output.check_output(name, force=force)
    paths = image_folder(images)
    available = rdm.ladder_qualities(model)  # [None] for a one-rate model, whose -q is checked when coding
    unknown = sorted(set(qualities) - set(available)) if available != [None] else []
    if unknown:
        raise UsageError(f"the model has no quality {unknown[0]} (it has: {', '.join(str(q) for q in available)})")
    levels = list(qualities) or available
    with output.status(f"evaluating {len(paths)} images at {len(levels)} levels"):
        report = rdm.evaluate_ladder(model, paths, levels, device, effort)
    err = json_name is not None and output.is_stdio(json_name)
    click.echo(f"{len(paths)} images, model {model or '(default)'}, effort {effort}; baselines matched per image "
               "to PSIC's bpp; PSNR in dB", err=err)
    rows = [("quality", "bpp", "full", "protected", "full-prot", *(c.replace("WEBP", "WebP") for c in rdm.BASELINES))]
    for level in report["levels"]:
        summary = level["summary"]
        rows.append((
            "-" if level["quality"] is None else str(level["quality"]),
            f"{summary['bpp']:.4f}", f"{summary['psnr_full']:.2f}", f"{summary['psnr_protected']:.2f}",
            f"{summary['psnr_full'] - summary['psnr_protected']:.2f}",
            *(f"{summary['baselines'][c]['psnr']:.2f}" for c in rdm.BASELINES),
        ))
    _echo_table(rows, err)
    if len(levels) > 1:
        for mode, figures in report["bd_rate"].items():
            text = ", ".join(f"{c.replace('WEBP', 'WebP')} {format_bd_rate(v)}" for c, v in figures.items())
            click.echo(f"BD-rate of PSIC {mode}: {text}", err=err)
    if plot_name is not None:
        from psic.eval.plot import rd_plot_png

        title = f"{model or 'default model'} on {output.display_name(images)} ({len(paths)} images)"
        output.write_output(plot_name, rd_plot_png(report, title), force=force)
    if json_name is not None:
        _write_json(json_name, {"model": model, "folder": images, "effort": effort, **report}, force)


@eval_group.command(short_help="Retrieval and attack success rate against target models.")
@click.option("-m", "--model", metavar="NAME|PATH", help=_MODEL_HELP)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Captioned set (captions.tsv and images/), e.g. Flickr8k.",
)
@click.option(
    "-t",
    "--target",
    "targets",
    required=True,
    multiple=True,
    metavar="SPEC",
    help="Target model (repeatable): a shipped surrogate, NAME=WEIGHTS for a surrogate with other weights, "
    "or an open_clip NAME:PRETRAINED.",
)
@click.option("-q", "--quality", type=click.IntRange(min=1), help="Quality level of a gain network (default: 3).")
@click.option("--val-count", type=click.IntRange(min=1), default=1000, show_default=True, help="Size of the split.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N validation images (quick runs).")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=75, show_default=True, help="JPEG re-save.")
@options.effort_option
@click.option("--device", metavar="cpu|cuda", help=_DEVICE_HELP)
@click.option("--json", "json_name", metavar="OUT", help=_JSON_HELP)
@click.option("-f", "--force", is_flag=True, help=_FORCE_HELP)
def privacy(
    model: str | None,
    quality: int | None,
    data: str,
    targets: tuple[str, ...],
    val_count: int,
    limit: int | None,
    jpeg_quality: int,
    effort: int,
    device: str | None,
    json_name: str | None,
    force: bool,
) -> None:
    """Image-text retrieval (R@1/5/10, i2t and t2i) on the validation split of --data for the originals,
    the full and protected decodes of real .psic files, the protected decodes re-saved as JPEG and downscaled 0.5x,
    and both decodes grey-world white balanced; and the attack success rate: among pairs the full decode gets
    right at R@1, the % the protected decode gets wrong.
    """
    from psic.eval.privacy import evaluate_retrieval, validation_set

    if json_name is not None:
        output.check_output(json_name, force=force)
    err = json_name is not None and output.is_stdio(json_name)
    try:
        validation_set(data, val_count, limit)
    except OSError as exc:
        raise PsicIOError(f"cannot read the captioned set {output.display_name(data)}: {exc}") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with output.status("evaluating"):
        report = evaluate_retrieval(
            model, [_target_spec(t) for t in targets], data, val_count, limit, jpeg_quality, device, quality=quality,
            effort=effort,
        )
    click.echo(
        f"{report['images']} images, {report['captions']} captions; {report['bpp']:.4f} bpp, "
        f"PSNR full {report['psnr_full']:.2f} dB, protected {report['psnr_protected']:.2f} dB",
        err=err,
    )
    for target in report["targets"]:
        click.echo(f"\ntarget {target['target']}  (i2t / t2i, %)", err=err)
        rows = [("gallery", "R@1", "R@5", "R@10")]
        for gallery, recall in target["recall"].items():
            rows.append((gallery, *(_pair(recall[f"i2t_R@{k}"], recall[f"t2i_R@{k}"]) for k in (1, 5, 10))))
        rows += [
            ("ASR full->protected", _pair(**target["asr"]), "", ""),
            (f"ASR full->protected+JPEG{jpeg_quality}", _pair(**target["asr_jpeg"]), "", ""),
            ("ASR full->protected, 0.5x", _pair(**target["asr_half"]), "", ""),
            ("ASR full->protected, both grey world", _pair(**target["asr_balanced"]), "", ""),
            ("ASR original->protected", _pair(**target["asr_vs_original"]), "", ""),
            ("ASR WebP@bpp->protected (stand-in)", _pair(**target["asr_vs_webp"]), "", ""),
            ("full R@1 % of original", _pair(**target["full_r1_pct_of_original"]), "", ""),
        ]
        _echo_table(rows, err)
        i2t, t2i = (target["asr_counts"]["asr"][d] for d in ("i2t", "t2i"))
        click.echo(
            f"ASR full->protected rests on {i2t['fooled']} of {i2t['of']} images, {t2i['fooled']} of {t2i['of']} captions; "
            f"95 % interval {_interval(i2t['ci95'])} / {_interval(t2i['ci95'])}",
            err=err,
        )
    if json_name is not None:
        _write_json(json_name, report, force)


def _interval(bounds: list[float]) -> str:
    """An ASR with no pairs behind it (the full decode retrieved nothing) has no interval: say so, not 'nan-nan'."""
    if not all(math.isfinite(bound) for bound in bounds):
        return "n/a (no pairs)"
    return f"{bounds[0]:.1f}-{bounds[1]:.1f}"


def _target_spec(text: str) -> str | tuple[str, str]:
    """``NAME=WEIGHTS`` (no ':' in NAME, so open_clip specs with paths stay whole) -> (NAME, WEIGHTS)."""
    name, sep, weights = text.partition("=")
    if sep and ":" not in name:
        if not name or not weights:
            raise UsageError(f"invalid target {text!r}: use NAME=WEIGHTS")
        return name, weights
    return text


def _pair(i2t: float, t2i: float) -> str:
    return f"{_format_percent(i2t)} / {_format_percent(t2i)}"


def _format_percent(value: float) -> str:
    return f"{value:5.1f}" if math.isfinite(value) else "  n/a"


def _echo_table(rows: Sequence[tuple[str, ...]], err: bool) -> None:
    """Aligned columns; on stderr when the JSON goes to stdout."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), err=err)


def _write_json(name: str, report: dict, force: bool) -> None:
    """Strict JSON: NaN and infinities (an empty ASR denominator, a lossless image) become null."""

    def clean(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    text = json.dumps(clean(report), indent=2, allow_nan=False) + "\n"
    output.write_output(name, text.encode("utf-8"), force=force)
