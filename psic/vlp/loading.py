"""Resolve a target-model spec to a :class:`VisionLanguageModel`.

Specs: the name of a shipped surrogate (``psic-surrogate``), or ``NAME:PRETRAINED`` where
NAME is an open_clip architecture and PRETRAINED an open_clip tag (``ViT-B-32:openai``,
the paper's target, for users with internet) or a local checkpoint file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from psic.errors import ModelNotAvailableError, WeightsMismatchError
from psic.vlp.model import VisionLanguageModel
from psic.vlp.surrogate import SURROGATES


def load_vlp(spec: str, *, device: str | torch.device = "cpu", weights: str | os.PathLike | None = None) -> VisionLanguageModel:
    """Load a frozen fp32 target model; ``weights`` overrides a shipped surrogate's file."""
    if spec in SURROGATES:
        return _load_surrogate(spec, weights).to(device)
    name, sep, pretrained = spec.partition(":")
    if not sep or not name or not pretrained:
        raise ModelNotAvailableError(
            f"invalid target model {spec!r}: use a shipped surrogate ({', '.join(SURROGATES)}) or NAME:PRETRAINED"
        )
    return _load_open_clip(name, pretrained).to(device)


def load_image_tower(spec: str, *, device: str | torch.device = "cpu", weights: str | os.PathLike | None = None) -> VisionLanguageModel:
    """A shipped surrogate's image tower alone (no text tower, no MiniLM package needed)."""
    from safetensors.torch import load_file

    from psic.vlp import surrogate

    if spec not in SURROGATES:
        raise ModelNotAvailableError(f"only shipped surrogates load as an image tower, not {spec!r}")
    path = surrogate_weights_path(spec, weights)
    model = surrogate.ImageTower(spec)
    prefix = "visual."
    state = {k[len(prefix):]: v.float() for k, v in load_file(str(path)).items() if k.startswith(prefix)}
    model.visual.load_state_dict(state, strict=True)
    mean, std = surrogate.NORMALIZATION
    config = surrogate.surrogate_config(spec)
    return VisionLanguageModel(model, _no_tokenizer, config.image_size, mean, std, spec).to(device)


def surrogate_weights_path(name: str, weights: str | os.PathLike | None) -> str | os.PathLike:
    """The shipped file (sha256-checked) or the file the caller names."""
    from psic.codec.weights import file_sha256
    from psic.vlp import surrogate

    if weights is not None:
        return Path(weights)
    path, expected = surrogate.shipped_weights(name)
    if file_sha256(path) != expected:
        raise WeightsMismatchError(f"{path.name} does not match its registered sha256")
    return path


def _no_tokenizer(captions):
    raise ModelNotAvailableError("this target was loaded without its text tower")


def _load_surrogate(name: str, weights: str | os.PathLike | None) -> VisionLanguageModel:
    from safetensors.torch import load_file

    from psic.vlp import surrogate

    path = surrogate_weights_path(name, weights)
    model = surrogate.build_surrogate(name)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(surrogate.LOCKED_PREFIX) for k in missing):
        raise ModelNotAvailableError(f"{path} does not hold {name} weights")
    mean, std = surrogate.NORMALIZATION
    config = surrogate.surrogate_config(name)
    return VisionLanguageModel(model, surrogate.tokenizer(), config.image_size, mean, std, name)


def _load_open_clip(name: str, pretrained: str) -> VisionLanguageModel:
    import open_clip

    try:
        model = open_clip.create_model(name, pretrained=pretrained, device="cpu")
    except (RuntimeError, FileNotFoundError, ValueError, OSError) as exc:
        raise ModelNotAvailableError(f"cannot load {name}:{pretrained}: {exc}") from None
    image_size = model.visual.image_size
    size = image_size[0] if isinstance(image_size, (tuple, list)) else image_size
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
    std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
    return VisionLanguageModel(model, open_clip.get_tokenizer(name), size, mean, std, f"{name}:{pretrained}")
