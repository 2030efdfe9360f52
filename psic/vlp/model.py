"""One small interface over an open_clip model: the target VLP of training and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psic.vlp.preprocess import preprocess


class VisionLanguageModel(nn.Module):
    """A frozen, fp32 CLIP-style model taking images as [B, 3, H, W] tensors in [0, 1]."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Callable[[Sequence[str]], Tensor],
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        name: str,
    ) -> None:
        super().__init__()
        self.model: Any = model.float().eval().requires_grad_(False)  # open_clip's CLIP classes, untyped
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.name = name

    def train(self, mode: bool = True) -> VisionLanguageModel:
        """Stays in eval mode: the target is never trained through this wrapper."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode_image(self, images: Tensor) -> Tensor:
        """Normalized embeddings; differentiable with respect to ``images``."""
        pixels = preprocess(images.float(), self.image_size, self.mean, self.std)
        return F.normalize(self.model.encode_image(pixels), dim=-1)

    @torch.no_grad()
    def encode_text(self, captions: Sequence[str]) -> Tensor:
        tokens = self.tokenizer(list(captions)).to(self.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)
