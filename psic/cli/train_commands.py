"""``psic train``: the two PSIC training stages, weight export, and the surrogate target.

Heavy modules are imported inside the commands so that ``psic --help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import click

from psic.cli.output import check_output, write_output
from psic.errors import PsicIOError, UsageError


@click.group(short_help="Train PSIC models and surrogate target models.")
def train() -> None:
    """Train PSIC (two stages, resumable), export weights, train a surrogate VLP."""


@train.command("run", short_help="Train (or resume) one stage of a PSIC model.")
@click.option("--run-dir", required=True, metavar="DIR", help="Checkpoints, settings and log.jsonl go here; an existing last.pt is resumed.")
@click.option("--config", "config_file", metavar="JSON", help="Settings file (keys of TrainSettings); options below override it.")
@click.option("--stage", type=click.IntRange(1, 2), help="1: all parameters (or stage1_trains); 2: decoder only (needs --init).")
@click.option("--lambda", "lmbda", type=float, help="Rate-distortion trade-off (x 255^2 x MSE).")
@click.option("--lambda-clip", type=float, help="Weight of the attack on the target VLP (0 = rate-distortion only).")
@click.option("--objective", type=click.Choice(["uaeo", "naive"]), help="Attack objective.")
@click.option(
    "--schedule", type=click.Choice(["mixed", "alternate", "paired", "full"]),
    help="Per-sample modes, whole iterations alternating (the paper), every image in both modes, or full only.",
)
@click.option("--steps", type=click.IntRange(min=1), help="Total optimizer steps of this stage.")
@click.option("--batch-size", type=click.IntRange(min=2), help="Captioned images per step.")
@click.option("--folder-batch", type=click.IntRange(min=0), help="Caption-less images per step.")
@click.option("--crop", type=click.IntRange(min=64), help="Training crop size (multiple of 64).")
@click.option("--lr", type=float, help="Learning rate of the main optimizer.")
@click.option("--lr-milestones", metavar="S1,S2", help="Steps at which the learning rate drops 10x.")
@click.option("--seed", type=int, help="Random seed (an integer).")
@click.option("--captioned", metavar="DIR", help="Image-caption set (captions.tsv + images/).")
@click.option("--folder", metavar="DIR", help="Caption-less image folder for rate-distortion.")
@click.option("--pack", metavar="NPZ", help="A data pack (psic train pack) instead of --captioned/--folder.")
@click.option("--target", metavar="SPEC", help="Target VLP: psic-surrogate, or NAME:PRETRAINED (open_clip).")
@click.option("--target-weights", metavar="PATH", help="Weights file for a surrogate target.")
@click.option("--init", metavar="CKPT", help="Start from the parameters of a checkpoint (last.pt) or an exported .safetensors.")
@click.option("--text-cache", metavar="PATH", help="Keep the target's caption features in PATH between runs.")
@click.option("--log-every", type=click.IntRange(min=1), help="Steps between log records.")
@click.option("--save-every", type=click.IntRange(min=1), help="Steps between checkpoints.")
@click.option("--device", metavar="cpu|cuda", help="Training device.")
def run(run_dir: str, config_file: str | None, **options) -> None:
    """Train with the paper's two-stage scheme. Run under ``torchrun`` to use several GPUs."""
    from psic.train.trainer import Trainer, TrainSettings

    values = _read_config(config_file)
    if options.get("lr_milestones"):
        options["lr_milestones"] = [int(v) for v in options["lr_milestones"].split(",")]
    values.update({k: v for k, v in options.items() if v is not None})
    try:
        settings = TrainSettings(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid training settings: {exc}") from None
    try:
        trainer = Trainer(settings, run_dir)
    except ValueError as exc:  # a start or resume the run folder's checkpoint or --init cannot serve
        raise UsageError(f"cannot start the run: {exc}") from None
    trainer.fit(log=_log_without_progress_bar)


@train.command("export", short_help="Freeze a checkpoint into a shippable weights file.")
@click.argument("checkpoint", metavar="CKPT")
@click.option("-o", "--output", required=True, metavar="OUT", help="Weights file to write (.safetensors).")
@click.option("--name", required=True, help="Model name recorded in the weights and in every .psic file.")
@click.option("--quality", type=click.IntRange(min=0), help="Quality of a one-rate model (a gain network has levels).")
@click.option("--fp32", is_flag=True, help="Keep float weights in fp32 (default: fp16 where safe).")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUT if it exists.")
def export(checkpoint: str, output: str, name: str, quality: int | None, fp32: bool, force: bool) -> None:
    """Fit the z quantiles, build the CDF tables and integer hyper-synthesis, write safetensors; prints the sha256."""
    import hashlib

    from psic.train.export import export_weights

    check_output(output, force=force)
    try:
        data, _ = export_weights(checkpoint, name=name, quality=quality, half=not fp32)
    except OSError as exc:
        raise PsicIOError(f"cannot read {checkpoint}: {exc.strerror or exc}") from None
    write_output(output, data, force=force)
    click.echo(hashlib.sha256(data).hexdigest())


@train.command("segment", short_help="Train the next segment of a training chain.")
@click.option("--chain", "chain_file", default="training/chain.json", show_default=True, metavar="JSON",
              help="The chain: model, weights file, stage settings.")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Run folders, exported weights and segment.json go here (resumable).")
@click.option("--minutes", type=click.FloatRange(min=0.5), required=True,
              help="Wall time of the segment, all its stages (at least half a minute: a GPU retune can be that short).")
@click.option("--captioned", metavar="DIR", help="Image-caption set (captions.tsv + images/).")
@click.option("--folder", metavar="DIR", help="Caption-less image folder for rate-distortion.")
@click.option("--pack", metavar="NPZ", help="A data pack (psic train pack) instead of --captioned/--folder.")
@click.option("--text-cache", metavar="PATH", help="Keep the target's caption features in PATH between runs.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda", help="Training device.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=JSON",
              help="Override a setting of the segment's stages, e.g. --set batch_size=64 (repeatable).")
@click.option("--init", metavar="CKPT", help="Start the segment's first stage from this checkpoint or weights file, not the chain's weights.")
@click.option("--stage1-only", is_flag=True,
              help="All the minutes on stage 1 with the chain's stage-1 settings: rate-distortion, the trigger held.")
@click.option("--stage2-only", is_flag=True,
              help="All the minutes on stage 2 with the chain's retune settings: retune the protection, keep the encoder.")
@click.option("--encoder-only", is_flag=True,
              help="All the minutes on the encoder side with the chain's encoder settings: keep the decoder as shipped.")
@click.option("--settings", metavar="JSON",
              help="With a one-stage kind (--stage1-only, --stage2-only, --encoder-only): this settings file "
                   "instead of the one the chain names.")
@click.option("--note", metavar="TEXT", help="Kept in the segment record (how it was run); replaces the note of an earlier run.")
def segment(chain_file: str, out_dir: str, minutes: float, captioned: str | None, folder: str | None,
            pack: str | None, text_cache: str | None, device: str, overrides: tuple[str, ...], init: str | None,
            stage1_only: bool, stage2_only: bool, encoder_only: bool, settings: str | None, note: str | None) -> None:
    """Stage 1 then stage 2 (or one stage alone, or the encoder alone) from the chain's current weights, then
    export; prints the record."""
    from psic.train.chain import run_segment

    kinds = [kind for kind, chosen in (("stage-1-only", stage1_only), ("stage-2-only", stage2_only),
                                       ("encoder-only", encoder_only)) if chosen]
    if len(kinds) > 1:
        raise UsageError("give one of --stage1-only, --stage2-only and --encoder-only")
    kind = kinds[0] if kinds else "two-stage"
    data = {"captioned": captioned, "folder": folder, "pack": pack, "text_cache": text_cache, **_overrides(overrides)}
    try:
        record = run_segment(chain_file, out_dir, minutes, data, device=device, init=init, kind=kind,
                             notes=note, settings=settings, log=_log_without_progress_bar)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot run the segment: {exc}") from None
    click.echo(json.dumps(record))


@train.command("adopt", short_help="Make a finished segment the chain's shipped weights.")
@click.argument("out_dir", metavar="DIR")
@click.option("--chain", "chain_file", default="training/chain.json", show_default=True, metavar="JSON")
@click.option("--registry", default="psic/weights/registry.json", show_default=True, metavar="JSON",
              help="Registry whose entry gets the new sha256.")
def adopt(out_dir: str, chain_file: str, registry: str) -> None:
    """Copy the segment's weights over the chain's file, update the registry and append the chain log."""
    from psic.train.chain import adopt_segment

    try:
        record = adopt_segment(chain_file, out_dir, registry)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot adopt {out_dir}: {exc}") from None
    click.echo(record["sha256"])


@train.command("pack", short_help="Pack training data into one small file for a GPU machine.")
@click.option("-o", "--output", required=True, metavar="NPZ", help="Pack file to write.")
@click.option("--captioned", metavar="DIR", help="Image-caption set (captions.tsv + images/).")
@click.option("--folder", metavar="DIR", help="Caption-less image folder for rate-distortion.")
@click.option("--target", default="psic-surrogate", show_default=True, metavar="NAME", help="Shipped surrogate whose caption features the pack holds.")
@click.option("--images", type=click.IntRange(min=1), default=2600, show_default=True, help="Captioned images kept.")
@click.option("--size", type=click.IntRange(min=64), default=128, show_default=True, help="Side captioned images are resized to.")
@click.option("--quality", type=click.IntRange(1, 100), default=85, show_default=True, help="JPEG quality inside the pack.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def pack(output: str, captioned: str | None, folder: str | None, target: str, images: int, size: int,
         quality: int, force: bool) -> None:
    """JPEG-coded images and the target's caption features (fp16); prints the file size."""
    import os

    from psic.codec.weights import file_sha256
    from psic.train.pack import PackSettings, build_pack, save_pack
    from psic.vlp import load_vlp
    from psic.vlp.loading import surrogate_weights_path

    if not captioned and not folder:
        raise UsageError("give --captioned, --folder or both")
    check_output(output, force=force)
    vlp = load_vlp(target) if captioned else None
    sha = file_sha256(surrogate_weights_path(target, None))
    arrays = build_pack(captioned, folder, vlp, target, sha, PackSettings(images=images, size=size, quality=quality))
    save_pack(output, arrays)
    click.echo(f"{output}: {os.path.getsize(output) / 2**20:.1f} MiB")


@train.command("surrogate", short_help="Train a CLIP-style surrogate target model.")
@click.option("--data", "data_root", required=True, metavar="DIR", help="Image-caption set (captions.tsv + images/).")
@click.option("-o", "--output", required=True, metavar="OUT", help="Weights file to write (.safetensors; metrics go to OUT.json).")
@click.option("--name", default="psic-surrogate", show_default=True, help="psic-surrogate (ResNet), psic-surrogate-deep (deeper ResNet, resized crops) or psic-surrogate-vit.")
@click.option("--epochs", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--feature-cache", metavar="PATH", help="Reuse the locked text tower's caption features across runs.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUT and OUT.json if they exist.")
def surrogate(data_root: str, output: str, name: str, epochs: int, batch_size: int, lr: float, seed: int,
              feature_cache: str | None, force: bool) -> None:
    """Image tower from scratch, pretrained MiniLM text tower (locked), symmetric InfoNCE."""
    from pathlib import Path

    from psic.train.surrogate import SurrogateSettings, train_surrogate

    report_name = output + ".json"
    for name_ in (output, report_name):
        check_output(name_, force=force)
    settings = SurrogateSettings(name=name, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    cache = Path(feature_cache) if feature_cache else None
    weights, report = train_surrogate(data_root, settings, log=lambda m: click.echo(m, err=True), pooled_cache=cache)
    write_output(output, weights, force=force)
    write_output(report_name, (json.dumps(report, indent=2) + "\n").encode(), force=force)
    click.echo(json.dumps(report["validation"]))


def _overrides(pairs: tuple[str, ...]) -> dict:
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set needs KEY=VALUE, got {pair!r}")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def _read_config(path: str | None) -> dict:
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except OSError as exc:
        raise PsicIOError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    from psic.train.trainer import TrainSettings

    known = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"{path}: unknown settings {', '.join(unknown)}")
    return values


def _log_without_progress_bar(record: dict) -> None:
    """On a terminal the progress bar shows the figures; elsewhere (logs, CI) print them."""
    if not sys.stderr.isatty():
        click.echo(json.dumps(record), err=True)
