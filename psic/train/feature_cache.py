"""Caption features computed once: a locked text tower gives the same features every run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch


def content_key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def cached(path: Path | None, key: str, compute: Callable[[], object]):
    """``compute()``, or what an earlier run stored at ``path`` under the same ``key``."""
    if path is not None and path.exists():
        stored = torch.load(path, weights_only=False)
        if stored.get("key") == key:
            return stored["value"]
    value = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"key": key, "value": value}, tmp)
        tmp.replace(path)
    return value


def text_tower_fingerprint(vlp) -> str:
    """Identifies the target's text side, so a cache never serves another model's features."""
    digest = hashlib.sha256(vlp.name.encode())
    for name, tensor in sorted(vlp.model.state_dict().items()):
        if not name.startswith(("visual.", "logit_")):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()
