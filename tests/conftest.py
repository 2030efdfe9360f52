"""Shared fixtures: tiny random PSIC models built with fixed seeds (nothing is downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))  # make_golden's helpers for test_golden

TINY_NAME = "tiny-test"
TINY_GAIN_NAME = "tiny-vr"


def build_tiny_model(seed: int = 0, levels: int = 0):
    """A frozen N=8, M=12 model (a gain network with ``levels``): seconds to build, milliseconds to run."""
    import torch

    from psic.codec.network import ARCHITECTURE, GAIN_ARCHITECTURE, Architecture, ConditionalHyperprior

    torch.manual_seed(seed)
    name = GAIN_ARCHITECTURE if levels else ARCHITECTURE
    model = ConditionalHyperprior(Architecture(N=8, M=12, cond_hidden=16, name=name, levels=levels)).eval()
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
def tiny_gain_model_path(tmp_path_factory) -> Path:
    """A tiny gain network of 8 quality levels."""
    from psic.codec.weights import save_weights

    path = tmp_path_factory.mktemp("models") / "tiny-vr.safetensors"
    save_weights(build_tiny_model(levels=8), path, name=TINY_GAIN_NAME)
    return path


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


def build_tiny_vlp():
    """A random open_clip CLIP (ViT + text transformer) small enough for CPU tests."""
    import open_clip
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from psic.vlp import VisionLanguageModel

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    )
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    return VisionLanguageModel(model, tokenizer, 32, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD, "tiny")


@pytest.fixture(scope="session")
def tiny_vlp():
    return build_tiny_vlp()


@pytest.fixture(scope="session")
def captioned_dir(tmp_path_factory) -> Path:
    """A Flickr8k-shaped set of 12 small photos with 2 captions each."""
    from PIL import Image

    root = tmp_path_factory.mktemp("captioned")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    lines = ["image\tcaption"]
    for i in range(12):
        name = f"img{i:02d}.jpg"
        pixels = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / name, quality=95)
        lines += [f"{name}\ta photo number {i}, with a comma", f"{name}\tpicture {i} of a thing"]
    (root / "captions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
