"""Shared fixtures: tiny random PSIC models built with fixed seeds (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY_NAME = "tiny-test"


def build_tiny_model(seed: int = 0):
    """A frozen N=8, M=12 model: seconds to build, milliseconds to run."""
    import torch

    from psic.codec.network import Architecture, ConditionalHyperprior

    torch.manual_seed(seed)
    model = ConditionalHyperprior(Architecture(N=8, M=12, cond_hidden=16)).eval()
    model.freeze_entropy_models()
    return model


def save_tiny_model(path: Path, seed: int = 0) -> Path:
    from psic.codec.weights import save_weights

    save_weights(build_tiny_model(seed), path, name=TINY_NAME, quality=1)
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny.safetensors")


@pytest.fixture(scope="session")
def other_tiny_model_path(tmp_path_factory) -> Path:
    """Same name and shapes as ``tiny_model_path`` but other weights."""
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-other.safetensors", seed=1)


@pytest.fixture
def photo() -> np.ndarray:
    """A smooth 70x90 RGB test image with some texture (odd size on purpose: needs padding)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:70, 0:90]
    base = np.stack([xx * 2.5, yy * 3.0, (xx + yy) * 1.4], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
