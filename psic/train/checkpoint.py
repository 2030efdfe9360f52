"""Resumable training checkpoints: model, optimizers, scheduler, step and RNG states."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch


def save_checkpoint(path: Path, trainer) -> None:
    """Write atomically, so an interrupted save never replaces the last good checkpoint."""
    state = {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "aux_optimizer": trainer.aux_optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "step": trainer.step,
        "settings": asdict(trainer.settings),
        "numpy_rng": trainer.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_initial_parameters(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Start a run from the parameters of a training checkpoint or of an exported weights file.

    Buffers are not taken: the CDF tables and the integer h_s are rebuilt at export. The fp16
    tensors of a shipped file are widened when copied into the fp32 model.
    """
    if Path(path).suffix == ".safetensors":
        from psic.codec.weights import load_weights_file

        state = dict(load_weights_file(path, None, "cpu").named_parameters())
    else:
        state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    names = [name for name, _ in model.named_parameters()]
    missing = [name for name in names if name not in state]
    if missing:
        raise ValueError(f"{path} lacks {len(missing)} parameters of this architecture, e.g. {missing[0]}")
    model.load_state_dict({name: state[name] for name in names}, strict=False)


def load_checkpoint(path: Path, trainer) -> int:
    """Restore a trainer in place; returns the step to continue from."""
    state = torch.load(path, map_location=trainer.device, weights_only=False)
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.aux_optimizer.load_state_dict(state["aux_optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])
