"""A training chain: segments that each resume from the last shipped weights, so that
training time adds up over sessions and machines.

The state that survives between segments is the shipped weights file itself (fp16, with
fp32 entropy models) and the chain's log. A segment is a warm restart: stage 1 (the
parameters its settings name) starts from those weights with fresh optimizer moments, stage 2
(decoder and CLTG) follows, and the export becomes the next shipped file. A stage-1-only
segment trains for rate-distortion alone; a stage-2-only segment retunes the protection
alone; an encoder-only segment trains the encoder side alone (analysis, hyperprior, entropy
models, level gains) against the shipped decoder, which it leaves as it is. Adam's moments
rebuild within a few hundred steps, far less than a segment, so nothing else needs committing.

``training/chain.json`` names the model, its weights file, where the very first segment
starts from, and the settings files of the two stages and of the one-stage segment kinds;
``training/segments.jsonl`` gets one line per adopted segment (steps, seconds, hardware, the
last training figures).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from psic.machine import cpu_model
from psic.train.export import export_weights
from psic.train.trainer import Trainer, TrainSettings

SEGMENT_RECORD = "segment.json"
SEGMENT_START = "start.json"  # fixed by a segment's first run
# The stages each kind of segment trains; a segment exports the last one's checkpoint.
SEGMENT_STAGES = {"two-stage": (1, 2), "stage-1-only": (1,), "stage-2-only": (2,), "encoder-only": (1,)}
SEGMENT_FIELDS = {"stage", "device", "max_minutes", "init"}  # settings a segment sets from its own arguments


@dataclass(frozen=True)
class ChainPlan:
    """What ``chain.json`` holds; paths are relative to the folder the chain is run from."""

    model: str  # registry name of the gain network the chain trains
    weights: str  # its shipped weights file: each segment starts from it
    start: str  # what the first segment starts from, when ``weights`` does not exist yet
    stage1: str  # TrainSettings JSON of stage 1 (relative to chain.json)
    stage2: str  # and of stage 2
    stage2_share: float = 0.2  # share of a segment's minutes spent in stage 2
    retune: str | None = None  # TrainSettings JSON of stage-2-only segments (default: stage2)
    encoder: str | None = None  # TrainSettings JSON of encoder-only segments (stage 1, encoder prefixes)
    log: str = "segments.jsonl"  # relative to chain.json

    @classmethod
    def read(cls, path: str | os.PathLike) -> ChainPlan:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown chain settings {', '.join(unknown)}")
        plan = cls(**values)
        if not 0 < plan.stage2_share < 1:
            raise ValueError(f"{path}: stage2_share must be between 0 and 1")
        return plan

    def stage_settings(self, chain_file: Path, stage: int, *, kind: str = "two-stage") -> dict:
        if kind == "encoder-only":
            if not self.encoder:
                raise ValueError(f"{chain_file} names no settings file for encoder-only segments ('encoder')")
            name = self.encoder
        elif stage == 1:
            name = self.stage1
        elif kind == "stage-2-only" and self.retune:
            name = self.retune
        else:
            name = self.stage2
        with open(chain_file.parent / name, encoding="utf-8") as f:
            return json.load(f)

    def history(self, chain_file: Path) -> list[dict]:
        log = chain_file.parent / self.log
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def hardware(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA)"
    return f"{cpu_model()}, {torch.get_num_threads()} threads"


def run_segment(
    chain_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    minutes: float,
    data: dict,
    *,
    device: str = "cpu",
    init: str | None = None,
    kind: str = "two-stage",
    notes: str | None = None,
    settings: str | None = None,
    log: Callable[[dict], None] | None = None,
) -> dict:
    """Train one segment into ``out_dir`` (resumable) and export its weights there; returns its record.

    Each stage trains until its share of ``minutes`` (counted over resumes); run the same
    command again to resume, or with more minutes to extend. Once stage 2 has begun, stage 1
    is final, so extending then lengthens stage 2 only.

    ``data`` holds the TrainSettings data fields (captioned, folder, text_cache, target_weights)
    and any overrides of the stage settings; a ``seed`` there replaces the segment's own
    (stage s draws from seed + s, by default 1000 x segment + s), so a second try at the same
    segment number sees other batches;
    ``init`` replaces the chain's weights as the start (a checkpoint of an interrupted segment).
    ``kind`` (SEGMENT_STAGES): "two-stage"; "stage-1-only" spends all the minutes on stage 1 with
    the chain's ``stage1`` settings (the rate-distortion stage; it holds the trigger where those
    settings leave the CLTG out); "stage-2-only" spends all the minutes on stage 2
    with the chain's ``retune`` settings, a fine-tune of the protection that keeps the encoder
    and the level gains; "encoder-only" spends them on one stage with the chain's ``encoder``
    settings, which train the encoder side against the decoder as shipped. ``settings`` (a
    TrainSettings JSON file) replaces the chain's file of a one-stage kind for this segment, e.g.
    ``stage2.json`` for a stage 2 that fine-tunes the whole decoder. ``notes`` go into the record.
    The segment's number, start, kind and settings file are fixed by its first run
    (``start.json``), so a resume or an extension after an adoption records the same.
    """
    if kind not in SEGMENT_STAGES:
        raise ValueError(f"a segment is one of {', '.join(SEGMENT_STAGES)}, not {kind!r}")
    stage_list = SEGMENT_STAGES[kind]
    if settings is not None and len(stage_list) != 1:
        raise ValueError("a settings file replaces the chain's settings of a one-stage segment "
                         "(stage-1-only, stage-2-only or encoder-only), not of a two-stage one")
    fixed = sorted(SEGMENT_FIELDS & data.keys())
    if fixed:
        raise ValueError(f"the segment sets {', '.join(fixed)} itself (--minutes, --device, --init)")
    if not isinstance(data.get("seed", 0), int) or isinstance(data.get("seed"), bool):
        raise TypeError("seed must be an int")
    chain_file, out = Path(chain_file), Path(out_dir)
    plan = ChainPlan.read(chain_file)
    start = _segment_start(out, plan, chain_file, init, kind, notes, settings)
    if len(stage_list) == 1:
        stage_minutes = {stage_list[0]: minutes}
    else:
        stage_minutes = {1: minutes * (1 - plan.stage2_share), 2: minutes * plan.stage2_share}
    stages = {}
    for stage, stage_budget in stage_minutes.items():
        run_dir = out / f"stage{stage}"
        if stage == 1 and len(stage_list) == 2 and (out / "stage2" / "last.pt").exists():
            stages["stage1"] = _run_record(run_dir)  # stage 2 has begun: stage 1 is final
            continue
        values = {**_stage_settings(plan, chain_file, stage, kind, start.get("settings")), **data}
        values.update(
            stage=stage, device=device, max_minutes=stage_budget,
            seed=data.get("seed", 1000 * start["segment"]) + stage,
            init=str(out / "stage1" / "last.pt") if stage == 2 and len(stage_list) == 2 else start["init"],
        )
        trainer = Trainer(TrainSettings(**values), run_dir)
        _write_json(out / SEGMENT_START, start)  # the start loaded: the segment has begun
        trainer.fit(log=log)
        stages[f"stage{stage}"] = _run_record(run_dir)
    weights, aux = export_weights(out / f"stage{stage_list[-1]}" / "last.pt", name=plan.model)
    (out / f"{plan.model}.safetensors").write_bytes(weights)
    record = {
        "segment": start["segment"],
        "kind": kind,
        "finished": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "started_from": start["started_from"],
        "hardware": hardware(device),
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **stages,
        **({"settings": start["settings"]} if start.get("settings") else {}),
        "aux_loss": round(aux, 3),
        "sha256": hashlib.sha256(weights).hexdigest(),
        **({"notes": start["notes"]} if start["notes"] else {}),
    }
    _write_json(out / SEGMENT_RECORD, record)
    return record


def _stage_settings(plan: ChainPlan, chain_file: Path, stage: int, kind: str, settings: str | None) -> dict:
    if settings is None:
        return plan.stage_settings(chain_file, stage, kind=kind)
    with open(settings, encoding="utf-8") as f:
        return json.load(f)


def _segment_start(out: Path, plan: ChainPlan, chain_file: Path, init: str | None, kind: str,
                   notes: str | None, settings: str | None) -> dict:
    """The segment's number, start weights, kind, settings and notes: those of its first run once it has begun."""
    if (out / SEGMENT_START).exists():
        start = json.loads((out / SEGMENT_START).read_text(encoding="utf-8"))
        held = start.get("kind") or ("stage-2-only" if start.get("stage2_only") else "two-stage")  # older folders
        if held != kind:  # a two-stage segment's stage 2 starts from its own stage 1
            raise ValueError(f"{out} holds a {held} segment; resume it as one, or use a new folder")
        if settings is not None and settings != start.get("settings"):
            raise ValueError(f"{out} was begun with the settings {start.get('settings') or 'of the chain'}; "
                             "resume it with those, or use a new folder")
        return {**start, "kind": held, "notes": notes or start["notes"]}
    if init is None:
        trained = Path(plan.weights).exists()
        if kind != "two-stage" and not trained:
            raise ValueError(f"a {kind} segment tunes trained weights, and {plan.weights} does not exist yet")
        init = plan.weights if trained else plan.start
    return {"segment": len(plan.history(chain_file)) + 1, "init": init, "started_from": _short_sha(Path(init)),
            "kind": kind, "settings": settings, "notes": notes}


def _write_json(path: Path, values: dict) -> None:
    path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")


def adopt_segment(chain_file: str | os.PathLike, out_dir: str | os.PathLike, registry: str | os.PathLike) -> dict:
    """Make a finished segment the chain's state: its weights become the shipped file, its record a log line."""
    chain_file, out = Path(chain_file), Path(out_dir)
    plan = ChainPlan.read(chain_file)
    record = json.loads((out / SEGMENT_RECORD).read_text(encoding="utf-8"))
    source = out / f"{plan.model}.safetensors"
    if hashlib.sha256(source.read_bytes()).hexdigest() != record["sha256"]:
        raise ValueError(f"{source} does not match its segment record")
    tmp = Path(plan.weights + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, plan.weights)
    _register(Path(registry), plan.model, record["sha256"])
    with open(chain_file.parent / plan.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return record


def _register(registry: Path, name: str, sha256: str) -> None:
    values = json.loads(registry.read_text(encoding="utf-8"))
    entry = next((m for m in values["models"] if m["name"] == name), None)
    if entry is None:
        raise ValueError(f"{registry} has no entry {name!r}; add it before adopting a segment")
    entry["sha256"] = sha256
    tmp = registry.with_name(registry.name + ".tmp")
    tmp.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, registry)


def _run_record(run_dir: Path) -> dict:
    """Steps and training seconds of a run (from its checkpoint), and its last log line."""
    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
    return {"steps": int(state["step"]), "seconds": round(float(state.get("elapsed", 0.0))),
            "last_log": _last_log(run_dir / "log.jsonl")}


def _last_log(path: Path) -> dict:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return json.loads(lines[-1]) if lines else {}


def _short_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]
