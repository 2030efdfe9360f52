"""Weights files: safetensors with the architecture in the metadata, verified by sha256.

A weights file holds everything a decoder needs, including the CDF tables and the
integer hyper-synthesis, so loading never recomputes anything a bitstream depends on.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from psic.codec.network import ARCHITECTURES, Architecture, ConditionalHyperprior
from psic.codec.registry import MODEL_NAME, ModelIdentity, resolve_model_path
from psic.errors import DeviceError, ModelError, ModelNotAvailableError, UsageError, WeightsMismatchError

WEIGHTS_FORMAT = "1"
# Entropy-model parameters and GDN reparametrizations stay fp32: they are small, and fp16
# would round GDN's tiny pedestal-offset values and the quantile medians.
_FULL_PRECISION_PARTS = ("entropy_bottleneck.", "gaussian_conditional.", "integer_h_s.", ".igdns.", "g_a.1.", "g_a.3.", "g_a.5.", "gains.")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_bytes(model: ConditionalHyperprior, *, name: str, quality: int | None = None, half: bool = True) -> bytes:
    """A frozen model as a safetensors file image (fp16 where the codec tolerates it).

    ``quality`` is the level of a one-rate model; a gain network has its levels instead.
    """
    if not MODEL_NAME.fullmatch(name):
        raise UsageError(f"invalid model name {name!r}: use 1-64 of a-z, 0-9, '.', '_', '-'")
    if not model.is_frozen():
        raise UsageError("freeze_entropy_models() must run before saving weights")
    if (quality is None) != model.arch.variable_rate:
        raise UsageError("a one-rate model needs its quality; a gain network takes none")
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point() and not any(part in key for part in _FULL_PRECISION_PARTS):
            value = value.half()
        tensors[key] = value
    arch = model.arch
    metadata = {
        "psic.format": WEIGHTS_FORMAT,
        "psic.name": name,
        "psic.architecture": arch.name,
        "psic.N": str(arch.N),
        "psic.M": str(arch.M),
        "psic.cond_hidden": str(arch.cond_hidden),
        "psic.levels": str(arch.levels),
    }
    if arch.level_trigger:
        metadata["psic.level_trigger"] = "1"
    if arch.trigger_branches:
        metadata["psic.trigger_branches"] = str(arch.trigger_branches)
    if quality is not None:
        metadata["psic.quality"] = str(quality)
    return save(tensors, metadata=metadata)


def save_weights(
    model: ConditionalHyperprior, path: str | os.PathLike, *, name: str, quality: int | None = None, half: bool = True
) -> str:
    """Write a frozen model; returns the file's sha256 (what the registry records)."""
    data = weights_bytes(model, name=name, quality=quality, half=half)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None means CUDA when present, else CPU; asking for a missing CUDA is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"invalid device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA device is available")
    if resolved.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device type {resolved.type!r} (use cpu or cuda)")
    return resolved


def _read_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"cannot read weights file {path}: {exc}") from None
    if metadata.get("psic.format") != WEIGHTS_FORMAT or metadata.get("psic.architecture") not in ARCHITECTURES:
        raise ModelError(f"{path} is not a PSIC weights file of format {WEIGHTS_FORMAT}")
    return metadata


def _architecture(metadata: dict[str, str], path: Path) -> Architecture:
    try:
        return Architecture(
            N=int(metadata["psic.N"]),
            M=int(metadata["psic.M"]),
            cond_hidden=int(metadata["psic.cond_hidden"]),
            name=metadata["psic.architecture"],
            levels=int(metadata.get("psic.levels", "0")),
            level_trigger=_flag(metadata.get("psic.level_trigger", "0")),
            trigger_branches=_small_count(metadata.get("psic.trigger_branches", "0")),
        )
    except (KeyError, ValueError):
        raise ModelError(f"{path} lacks valid architecture metadata") from None


def _flag(value: str) -> bool:
    """A boolean metadata value: exactly "0" or "1", so that a damaged file is not misread."""
    if value not in ("0", "1"):
        raise ValueError(f"not a flag: {value!r}")
    return value == "1"


def _small_count(value: str) -> int:
    """A count in metadata: one decimal digit, so that a damaged file is not misread."""
    if len(value) != 1 or not value.isdigit():
        raise ValueError(f"not a small count: {value!r}")
    return int(value)


def _fit_entropy_buffers(model: ConditionalHyperprior, state: dict[str, torch.Tensor]) -> None:
    """CompressAI creates its CDF buffers empty; give them the stored shapes before loading."""
    for module_name in ("entropy_bottleneck", "gaussian_conditional"):
        module = getattr(model, module_name)
        for buffer_name, buffer in list(module.named_buffers(recurse=False)):
            stored = state.get(f"{module_name}.{buffer_name}")
            if stored is not None and stored.shape != buffer.shape:
                module.register_buffer(buffer_name, torch.empty(stored.shape, dtype=buffer.dtype))


def load_weights_file(
    path: str | os.PathLike, expected_sha256: str | None, device: str | torch.device
) -> ConditionalHyperprior:
    """Load one weights file; with ``expected_sha256`` the file must hash to it."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotAvailableError(f"weights file not found: {path}")
    sha256 = file_sha256(path)
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise WeightsMismatchError(f"{path.name} does not match its registered sha256 (file damaged or replaced)")
    metadata = _read_metadata(path)
    model = ConditionalHyperprior(_architecture(metadata, path))
    try:
        state = load_file(str(path), device="cpu")
        _fit_entropy_buffers(model, state)
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as exc:
        raise ModelError(f"weights in {path} do not fit the architecture: {exc}") from None
    quality = int(metadata["psic.quality"]) if "psic.quality" in metadata else None
    model.identity = ModelIdentity(name=metadata["psic.name"], sha256=sha256, quality=quality, levels=model.arch.levels)
    return model.eval().requires_grad_(False).to(device)


def load_model(
    spec: str | os.PathLike | None = None, *, device: str | torch.device | None = None, quality: int | None = None
) -> ConditionalHyperprior:
    """Load a registered model by name, a weights file by path, or the default model."""
    path, expected = resolve_model_path(spec, quality)
    return load_weights_file(path, expected, resolve_device(device))
