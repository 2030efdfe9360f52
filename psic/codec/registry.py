"""The models that ship inside the package, by name (never by list position).

The registry is a JSON file next to the weights (``psic/weights/registry.json``) so that
listing models needs neither torch nor the weights themselves.

A variable-rate (gain) network serves several quality levels from one weights file. A
file it writes records the level in the model name, ``<name>-q<quality>`` (``psic-vr-q5``),
so the decoder knows the level without any field the one-rate models did not have.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from psic.errors import ModelNotAvailableError, UsageError

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LEVEL_NAME = re.compile(r"(?P<base>[a-z0-9][a-z0-9._-]*)-q(?P<quality>[1-9][0-9]?)")


@dataclass(frozen=True)
class ModelEntry:
    """One shipped model: what it is, where its weights are and what they must hash to."""

    name: str
    architecture: str
    N: int
    M: int
    cond_hidden: int
    weights: str
    sha256: str
    quality: int | None = None  # the one rate of a one-rate model
    levels: int = 0  # quality levels 1..levels of a gain network
    description: str = ""

    @property
    def path(self) -> Path:
        return weights_dir() / self.weights


@dataclass(frozen=True)
class ModelIdentity:
    """Which weights a loaded network has: its name, file hash and quality levels."""

    name: str
    sha256: str
    quality: int | None = None  # one-rate models
    levels: int = 0  # gain networks

    @property
    def prefix(self) -> bytes:
        return bytes.fromhex(self.sha256[:8])

    def stream_name(self, quality: int | None) -> str:
        """The model name a file records: a gain network's names its level."""
        if not self.levels:
            return self.name
        return level_name(self.name, check_quality(quality, self.levels, self.name))

    def quality_of(self, stream_name: str) -> int | None:
        """The level a file's model name asks of these weights (None for a one-rate model)."""
        if not self.levels:
            if stream_name != self.name:
                raise ModelNotAvailableError(f"this file needs model {stream_name!r}; the model given is {self.name!r}")
            return None
        parsed = parse_level_name(stream_name)
        if parsed is None or parsed[0] != self.name or not 1 <= parsed[1] <= self.levels:
            raise ModelNotAvailableError(
                f"this file needs model {stream_name!r}; the model given is {self.name!r} (levels 1-{self.levels})"
            )
        return parsed[1]


def level_name(base: str, quality: int) -> str:
    return f"{base}-q{quality}"


def parse_level_name(name: str) -> tuple[str, int] | None:
    """(base, quality) of ``<base>-q<quality>``, or None."""
    match = _LEVEL_NAME.fullmatch(name)
    return (match["base"], int(match["quality"])) if match else None


def check_quality(quality: int | None, levels: int, name: str) -> int:
    """A gain network's quality, the registry's default one when None."""
    if quality is None:
        quality = default_quality()
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= levels:
        raise ModelNotAvailableError(f"model {name!r} has qualities 1-{levels}, not {quality!r}")
    return quality


def weights_dir() -> Path:
    return Path(str(resources.files("psic") / "weights"))


@lru_cache(maxsize=1)
def _registry() -> dict:
    with open(weights_dir() / "registry.json", encoding="utf-8") as f:
        return json.load(f)


def registered_models() -> tuple[ModelEntry, ...]:
    return tuple(ModelEntry(**entry) for entry in _registry()["models"])


def default_quality() -> int:
    return int(_registry().get("default_quality", 3))


def find_model(name: str) -> ModelEntry | None:
    return next((m for m in registered_models() if m.name == name), None)


def find_stream_model(name: str) -> ModelEntry | None:
    """The installed model that decodes files recording ``name`` (a level name for gain networks)."""
    entry = find_model(name)
    if entry is not None and not entry.levels:
        return entry
    parsed = parse_level_name(name)
    if parsed is None:
        return None
    entry = find_model(parsed[0])
    return entry if entry is not None and entry.levels and 1 <= parsed[1] <= entry.levels else None


def default_model() -> ModelEntry:
    """The registry's default model (a gain network: ``quality`` picks its level)."""
    default_name = _registry()["default"]
    if default_name is None:
        raise ModelNotAvailableError(
            "no default model is installed in this psic package; pass a weights file with --model PATH"
        )
    default = find_model(default_name)
    if default is None:
        raise ModelNotAvailableError(f"the registry's default model {default_name!r} is not registered")
    return default


def _default_for(quality: int | None) -> ModelEntry:
    """The default model, or, when it is a one-rate model of another quality, the installed one of ``quality``."""
    default = default_model()
    if quality is None or default.quality is None or default.quality == quality:
        return default
    same_family = [m for m in registered_models() if m.quality == quality and m.architecture == default.architecture]
    if not same_family:
        installed = sorted({m.quality for m in registered_models() if m.quality is not None})
        raise UsageError(f"no installed model has quality {quality} (installed: {', '.join(map(str, installed))})")
    return same_family[0]


def resolve_model_path(spec: str | os.PathLike | None, quality: int | None) -> tuple[Path, str | None]:
    """A registered name, a weights file path, or None for the default: (path, expected sha256).

    ``quality`` must match a one-rate model's; a gain network's level is checked when coding.
    """
    if spec is None:
        entry = _default_for(quality)
    else:
        found = find_model(str(spec)) if isinstance(spec, str) else None
        if found is None:
            path = Path(spec)
            if path.is_file():
                return path, None
            if path.suffix == ".safetensors" or path.exists():
                raise ModelNotAvailableError(f"weights file not found: {path}")
            raise ModelNotAvailableError(f"no model named {str(spec)!r} is installed and no such file exists")
        entry = found
    if entry.quality is not None and quality is not None and entry.quality != quality:
        raise UsageError(f"model {entry.name!r} has quality {entry.quality}, not {quality}")
    return entry.path, entry.sha256
