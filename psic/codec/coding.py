"""Bitstream coding: image <-> (z string, y string, index CRC).

The range coder and the CDF tables are CompressAI's (behind the guards of
:mod:`psic.codec.entropy_coder`); the tables come from the weights file (never
recomputed), and the y indexes come from the integer h_s, so a stream written on one
machine decodes on any other. The transforms run in tiles (:mod:`psic.codec.tiling`), so
memory stays bounded up to the pixel cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from psic.codec import entropy_coder, refinement, tiling
from psic.codec.effort import iterations_for
from psic.codec.fixed_point import index_crc
from psic.codec.network import DOWNSAMPLING, ConditionalHyperprior
from psic.errors import DeterminismError


@dataclass(frozen=True)
class Bitstreams:
    """What the container stores for one image."""

    z: bytes
    y: bytes
    index_crc: int


def z_grid(height: int, width: int) -> tuple[int, int]:
    """The hyper-latent grid follows from the image size, so files never store it."""
    return math.ceil(height / DOWNSAMPLING), math.ceil(width / DOWNSAMPLING)


def _channel_indexes(channels: int, grid: tuple[int, int]) -> Tensor:
    return torch.arange(channels, dtype=torch.int32).view(1, -1, 1, 1).expand(1, channels, *grid)


def _check_ready(model: ConditionalHyperprior) -> None:
    if not model.is_frozen():
        raise ValueError("the model's entropy tables are not built; call freeze_entropy_models() first")


def level_tensor(model: ConditionalHyperprior, quality: int | None) -> Tensor | None:
    """A gain network's 0-based level index for quality 1..levels (None for a one-rate model)."""
    if not model.arch.variable_rate:
        if quality is not None:
            raise ValueError("a one-rate model has no quality levels")
        return None
    if quality is None or not 1 <= quality <= model.arch.levels:
        raise ValueError(f"quality must be 1..{model.arch.levels} for this model")
    return torch.tensor([quality - 1], device=model.entropy_bottleneck.quantiles.device)


@torch.no_grad()
def compress(
    model: ConditionalHyperprior, image: Tensor | np.ndarray, quality: int | None = None, effort: int = 0
) -> Bitstreams:
    """Code one image: a padded float tensor [1, 3, H, W] (H, W multiples of 64, values in [0, 1])
    or an HxWx3 uint8 array of any size (padded by edge replication, tile by tile).

    ``effort`` 1-3 refines the latent for this image (:mod:`psic.codec.refinement`): a
    better picture for its size, at many times the encode time; 0 is the plain encoder.
    """
    _check_ready(model)
    iterations = iterations_for(effort)
    height, width = image.shape[2:] if isinstance(image, Tensor) else image.shape[:2]
    z_rows, z_cols = z_grid(height, width)
    grid = (z_rows * tiling.HYPER_STRIDE, z_cols * tiling.HYPER_STRIDE)
    device = model.entropy_bottleneck.quantiles.device
    level = level_tensor(model, quality)
    pixels = tiling.pixel_tiles(image, device)
    y = tiling.analysis(model, pixels, grid, level)
    z = tiling.hyper_analysis(model, y)
    medians = model.entropy_bottleneck.quantiles[:, 0, 1].view(1, -1, 1, 1)
    z_symbols = _symbols(z - medians)
    del z
    z_indexes = _channel_indexes(z_symbols.shape[1], (z_symbols.shape[2], z_symbols.shape[3]))
    z_string = entropy_coder.encode(z_symbols, z_indexes, entropy_coder.tables_of(model.entropy_bottleneck))
    indexes = tiling.scale_indexes(model, z_symbols)
    if iterations:
        if level is None:
            raise ValueError("effort above 0 needs a gain network (a model with quality levels)")
        y = refinement.refine(model, pixels, y, indexes, level, (height, width), iterations)
    y_symbols = _symbols(y)
    del y
    y_string = entropy_coder.encode(y_symbols, indexes, entropy_coder.tables_of(model.gaussian_conditional))
    return Bitstreams(z=z_string, y=y_string, index_crc=index_crc(indexes[0]))


def _symbols(latent: Tensor) -> Tensor:
    """Rounded, clamped to the coder's limit (far beyond any trained model's latents), int32 on the CPU."""
    limit = entropy_coder.SYMBOL_LIMIT
    return torch.round(latent).clamp_(-limit, limit).to(torch.int32).cpu()


@torch.no_grad()
def decode_latent(model: ConditionalHyperprior, streams: Bitstreams, height: int, width: int) -> Tensor:
    """Entropy-decode y_hat [1, M, h, w] (integers, on the CPU); checks the index CRC first.

    Any string the encoder cannot have written raises MalformedError, before the next
    (more expensive) step runs.
    """
    _check_ready(model)
    grid = z_grid(height, width)
    z_symbols = entropy_coder.decode(
        streams.z, _channel_indexes(model.arch.N, grid), entropy_coder.tables_of(model.entropy_bottleneck), "z string"
    )
    entropy_coder.check_length(len(streams.y), model.arch.M * grid[0] * grid[1] * tiling.HYPER_STRIDE**2, "y string")
    indexes = tiling.scale_indexes(model, z_symbols)
    if index_crc(indexes[0]) != streams.index_crc:
        raise DeterminismError(
            "the decoder's scale indexes differ from the encoder's (index CRC mismatch): "
            "the file was written with other weights or is corrupt"
        )
    return entropy_coder.decode(streams.y, indexes, entropy_coder.tables_of(model.gaussian_conditional), "y string")


def render(
    model: ConditionalHyperprior, y_symbols: Tensor, beta: float, height: int, width: int, quality: int | None = None
) -> np.ndarray:
    """Render the decoded latent in one mode as an HxWx3 uint8 array, tile by tile."""
    device = model.entropy_bottleneck.quantiles.device
    y_hat = y_symbols.to(device=device, dtype=torch.float32)
    condition = torch.full((1,), float(beta), device=device)
    return tiling.synthesis(model, y_hat, condition, level_tensor(model, quality), height, width)


@torch.no_grad()
def synthesize(
    model: ConditionalHyperprior, y_symbols: Tensor, beta: float, height: int, width: int, quality: int | None = None
) -> Tensor:
    """Render the decoded latent in one mode in a single pass: [1, 3, height, width] in [0, 1]."""
    device = model.entropy_bottleneck.quantiles.device
    y_hat = y_symbols.to(device=device, dtype=torch.float32)
    condition = torch.full((1,), float(beta), device=device)
    x_hat = model.synthesis(y_hat, condition, level_tensor(model, quality)).clamp_(0.0, 1.0)
    return x_hat[:, :, :height, :width]

