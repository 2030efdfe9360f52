"""The models that ship inside the package, by name (never by list position).

The registry is a JSON file next to the weights (``psic/weights/registry.json``) so that
listing models needs neither torch nor the weights themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from psic.errors import ModelNotAvailableError

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ModelEntry:
    """One shipped model: what it is, where its weights are and what they must hash to."""

    name: str
    architecture: str
    N: int
    M: int
    cond_hidden: int
    quality: int
    weights: str
    sha256: str
    description: str = ""

    @property
    def path(self) -> Path:
        return weights_dir() / self.weights


@dataclass(frozen=True)
class ModelIdentity:
    """What a bitstream records about the model that wrote it."""

    name: str
    sha256: str
    quality: int

    @property
    def prefix(self) -> bytes:
        return bytes.fromhex(self.sha256[:8])


def weights_dir() -> Path:
    return Path(str(resources.files("psic") / "weights"))


@lru_cache(maxsize=1)
def _registry() -> dict:
    with open(weights_dir() / "registry.json", encoding="utf-8") as f:
        return json.load(f)


def registered_models() -> tuple[ModelEntry, ...]:
    return tuple(ModelEntry(**entry) for entry in _registry()["models"])


def find_model(name: str) -> ModelEntry | None:
    return next((m for m in registered_models() if m.name == name), None)


def default_model(quality: int | None = None) -> ModelEntry:
    """The registry's default model, or the model of the default family at ``quality``."""
    default_name = _registry()["default"]
    if default_name is None:
        raise ModelNotAvailableError(
            "no default model is installed in this psic package; pass a weights file with --model PATH"
        )
    default = find_model(default_name)
    if default is None:
        raise ModelNotAvailableError(f"the registry's default model {default_name!r} is not registered")
    if quality is None:
        return default
    family = [m for m in registered_models() if m.architecture == default.architecture]
    match = next((m for m in family if m.quality == quality), None)
    if match is None:
        available = ", ".join(str(m.quality) for m in sorted(family, key=lambda m: m.quality))
        raise ModelNotAvailableError(f"no model of quality {quality} is installed (available: {available})")
    return match
