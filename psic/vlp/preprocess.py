"""Differentiable image preprocessing that matches open_clip's own PIL transform.

open_clip resizes the shorter side with an antialiased bicubic filter, center-crops and
normalizes. The attack trains through this path, so it must do the same on tensors; the
antialias flag is fixed here rather than left to a torchvision default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def shortest_side_resize(x: Tensor, size: int) -> Tensor:
    height, width = x.shape[-2:]
    scale = size / min(height, width)
    target = (max(size, round(height * scale)), max(size, round(width * scale)))
    if target == (height, width):
        return x
    return F.interpolate(x, size=target, mode="bicubic", align_corners=False, antialias=True)


def center_crop(x: Tensor, size: int) -> Tensor:
    height, width = x.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return x[..., top : top + size, left : left + size]


def preprocess(x: Tensor, size: int, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """[B, 3, H, W] in [0, 1] -> the model's normalized [B, 3, size, size] input."""
    x = center_crop(shortest_side_resize(x, size), size)
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / std_t
