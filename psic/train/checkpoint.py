"""Resumable training checkpoints: model, optimizers, scheduler, step and RNG states."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import torch

from psic.codec.network import ARCHITECTURE, GAIN_ARCHITECTURE, Architecture, ConditionalHyperprior
from psic.errors import ModelError, ModelNotAvailableError
from psic.train.warm_start import GROWN_PARAMETERS, gain_network_from


def save_checkpoint(path: Path, trainer) -> None:
    """Write atomically, so an interrupted save never replaces the last good checkpoint."""
    state = {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "aux_optimizer": trainer.aux_optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "step": trainer.step,
        "lr_dropped": trainer.lr_dropped,
        "elapsed": trainer.training_seconds(),
        "settings": asdict(trainer.settings),
        "numpy_rng": trainer.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_initial_parameters(model: ConditionalHyperprior, path: str | os.PathLike) -> None:
    """Start a run from the parameters of a training checkpoint or of an exported weights file.

    Buffers are not taken: the CDF tables and the integer h_s are rebuilt at export. The fp16
    tensors of a shipped file are widened when copied into the fp32 model. A one-rate source
    starts a gain network through :func:`psic.train.warm_start.gain_network_from`. A source with
    parameters the network lacks is refused: they would be dropped without a word.
    """
    source = model_from_file(path)
    if model.arch.variable_rate and not source.arch.variable_rate:
        gain_network_from(source, model)
        return
    state = dict(source.named_parameters())
    wanted = {name: p for name, p in model.named_parameters() if name in state or not name.startswith(GROWN_PARAMETERS)}
    extra = sorted(set(state) - set(wanted))
    if extra:
        raise ValueError(f"{path} has {len(extra)} parameters this architecture lacks, e.g. {extra[0]}")
    missing = [name for name, p in wanted.items() if name not in state or state[name].shape != p.shape]
    if missing:
        raise ValueError(f"{path} lacks {len(missing)} parameters of this architecture, e.g. {missing[0]}")
    model.load_state_dict({name: state[name] for name in wanted}, strict=False)


def architecture_of(settings: dict) -> Architecture:
    """The network a run's settings (a TrainSettings as a dict) describe."""
    levels = settings.get("levels", 0)
    return Architecture(
        settings["N"], settings["M"], settings["cond_hidden"], GAIN_ARCHITECTURE if levels else ARCHITECTURE, levels,
        settings.get("level_trigger", False), settings.get("trigger_branches", 0),
    )


def model_from_file(path: str | os.PathLike) -> ConditionalHyperprior:
    """The trained parameters of a checkpoint or weights file, in an fp32 network (buffers not built)."""
    if Path(path).suffix == ".safetensors":
        from psic.codec.weights import load_weights_file

        return load_weights_file(path, None, "cpu").float()
    if not Path(path).is_file():
        raise ModelNotAvailableError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        source = ConditionalHyperprior(architecture_of(state["settings"]))
        names = {name for name, _ in source.named_parameters()}
        source.load_state_dict({k: v for k, v in state["model"].items() if k in names}, strict=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path} is not a PSIC training checkpoint (last.pt) or weights file: {exc}") from None
    return source


# Settings that shape the network or its trainable parameters: a checkpoint resumes only under the same.
RESUME_SETTINGS = (
    "stage", "N", "M", "cond_hidden", "levels", "level_trigger", "trigger_branches", "stage1_trains", "stage2_trains",
)


def resume_conflicts(saved: dict, settings) -> list[str]:
    """The RESUME_SETTINGS where a checkpoint's settings differ from ``settings`` (a TrainSettings).

    A key an older checkpoint lacks counts as that field's default, the value it was trained with.
    """
    conflicts = []
    for field in fields(settings):
        if field.name not in RESUME_SETTINGS:
            continue
        default = field.default if field.default_factory is MISSING else field.default_factory()
        was, now = saved.get(field.name, default), getattr(settings, field.name)
        if was != now:
            conflicts.append(f"{field.name} {json.dumps(was)} (now {json.dumps(now)})")
    return conflicts


def load_checkpoint(path: Path, trainer) -> int:
    """Restore a trainer in place; returns the step to continue from.

    A checkpoint made under other network or trainable-set settings is refused with the
    differences named, instead of failing inside ``load_state_dict``.
    """
    state = torch.load(path, map_location=trainer.device, weights_only=False)
    conflicts = resume_conflicts(state.get("settings", {}), trainer.settings)
    if conflicts:
        raise ValueError(
            f"{path} was trained with {', '.join(conflicts)}: resume it with its own settings, or start a new run folder"
        )
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.aux_optimizer.load_state_dict(state["aux_optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    trainer.elapsed_before = float(state.get("elapsed", 0.0))
    trainer.lr_dropped = bool(state.get("lr_dropped", False))
    return int(state["step"])
