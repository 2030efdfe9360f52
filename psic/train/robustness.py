"""Differentiable stand-ins for what happens to a published image: JPEG re-coding, downscaling.

The attack trains through them (expectation over transformations), so the protected
decode keeps misleading the target after a platform re-compresses or shrinks it. The JPEG
stand-in is baseline JPEG's own arithmetic (BT.601 YCbCr, 4:2:0, 8x8 DCT, the standard
tables scaled by libjpeg's quality rule), with rounding passed straight through. A last view,
the protected decode without its colour cast, is for training and diagnosis, not a platform's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSFORMS = ("none", "jpeg75", "jpeg50", "half")

_LUMA_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA_TABLE = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32),
)


def _quality_table(table: tuple[int, ...], quality: int) -> Tensor:
    """libjpeg's scaling of a standard table to ``quality`` (1..100)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    values = torch.tensor(table, dtype=torch.float32).view(8, 8)
    return torch.clamp(torch.floor((values * scale + 50) / 100), 1, 255)


def _dct_matrix() -> Tensor:
    k = torch.arange(8, dtype=torch.float32)
    matrix = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    matrix[0] /= math.sqrt(2)
    return matrix  # orthonormal DCT-II: coefficients = D @ block @ D.T


def _round_straight_through(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def _code_plane(plane: Tensor, table: Tensor) -> Tensor:
    """[B, H, W] samples (0..255, minus 128) -> the same after DCT, quantization and inverse DCT."""
    batch, height, width = plane.shape
    d = _dct_matrix().to(plane)
    blocks = plane.view(batch, height // 8, 8, width // 8, 8).transpose(2, 3)
    coefficients = d @ blocks @ d.T
    table = table.to(plane)
    quantized = _round_straight_through(coefficients / table) * table
    restored = d.T @ quantized @ d
    return restored.transpose(2, 3).reshape(batch, height, width)


def jpeg(x: Tensor, quality: int) -> Tensor:
    """[B, 3, H, W] in [0, 1], H and W multiples of 16 -> its JPEG decode at ``quality``, differentiably."""
    if x.shape[-1] % 16 or x.shape[-2] % 16:
        raise ValueError("the JPEG stand-in needs sides that are multiples of 16")
    rgb = x.float() * 255
    r, g, b = rgb.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    luma = _code_plane(y - 128, _quality_table(_LUMA_TABLE, quality)) + 128
    chroma_table = _quality_table(_CHROMA_TABLE, quality)
    chroma = [
        F.interpolate(
            _code_plane(F.avg_pool2d(c[:, None], 2)[:, 0], chroma_table)[:, None], scale_factor=2, mode="nearest"
        )[:, 0]
        for c in (cb, cr)
    ]
    cb, cr = chroma
    out = torch.stack(
        (luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb), dim=1
    )
    return (out / 255).clamp(0, 1)


def half_size(x: Tensor) -> Tensor:
    """0.5x downscaling with an antialiased bilinear filter, as image hosts make thumbnails."""
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)


def without_cast(protected: Tensor, reference: Tensor, grid: int) -> Tensor:
    """``protected`` [B, 3, H, W] less the part of its difference to ``reference`` that is coarser
    than a ``grid`` x ``grid`` grid of the image (1: the mean colour), bilinearly spread.

    Not a platform's transformation (it needs the full decode): it shows how much of an attack
    is a colour cast, and training attacks through it so that the protection is not one.
    """
    difference = F.adaptive_avg_pool2d(protected - reference, grid)
    return protected - F.interpolate(difference, size=protected.shape[-2:], mode="bilinear", align_corners=False)


def apply(name: str, x: Tensor) -> Tensor:
    """One of :data:`TRANSFORMS` applied to a batch of images."""
    if name == "none":
        return x
    if name.startswith("jpeg"):
        return jpeg(x, int(name[4:]))
    if name == "half":
        return half_size(x)
    raise ValueError(f"unknown transform {name!r}; use one of {', '.join(TRANSFORMS)}")
