"""Bitstream coding: image tensor <-> (z string, y string, index CRC).

The range coder and the CDF tables are CompressAI's; the tables come from the weights
file (never recomputed), and the y indexes come from the integer h_s, so a stream
written on one machine decodes on any other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from psic.codec.compressai_parts import ans
from psic.codec.fixed_point import index_crc
from psic.codec.network import DOWNSAMPLING, ConditionalHyperprior
from psic.errors import DeterminismError, MalformedError


@dataclass(frozen=True)
class Bitstreams:
    """What the container stores for one image."""

    z: bytes
    y: bytes
    index_crc: int


def z_grid(height: int, width: int) -> tuple[int, int]:
    """The hyper-latent grid follows from the image size, so files never store it."""
    return math.ceil(height / DOWNSAMPLING), math.ceil(width / DOWNSAMPLING)


def _coding_tables(entropy_model: torch.nn.Module) -> tuple[list, list, list]:
    return (
        entropy_model._quantized_cdf.tolist(),
        entropy_model._cdf_length.reshape(-1).tolist(),
        entropy_model._offset.reshape(-1).tolist(),
    )


def _encode(symbols: Tensor, indexes: Tensor, entropy_model: torch.nn.Module) -> bytes:
    cdfs, lengths, offsets = _coding_tables(entropy_model)
    return ans.RansEncoder().encode_with_indexes(
        symbols.reshape(-1).tolist(), indexes.reshape(-1).tolist(), cdfs, lengths, offsets
    )


def _decode(string: bytes, indexes: Tensor, entropy_model: torch.nn.Module) -> Tensor:
    cdfs, lengths, offsets = _coding_tables(entropy_model)
    try:
        values = ans.RansDecoder().decode_with_indexes(string, indexes.reshape(-1).tolist(), cdfs, lengths, offsets)
    except (RuntimeError, ValueError) as exc:  # the coder refuses some corrupt strings
        raise MalformedError(f"entropy-coded data cannot be decoded ({exc})") from None
    return torch.tensor(values, dtype=torch.int32).view(indexes.shape)


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
def compress(model: ConditionalHyperprior, x: Tensor, quality: int | None = None) -> Bitstreams:
    """Code one padded image [1, 3, H, W] (H, W multiples of 64, values in [0, 1])."""
    _check_ready(model)
    y = model.analysis(x, level_tensor(model, quality))
    z = model.h_a(torch.abs(y))
    medians = model.entropy_bottleneck.quantiles[:, 0, 1].view(1, -1, 1, 1)
    z_symbols = torch.round(z - medians).to(torch.int32).cpu()
    z_string = _encode(z_symbols, _channel_indexes(z.shape[1], tuple(z.shape[2:])), model.entropy_bottleneck)
    indexes = model.integer_h_s(z_symbols)
    y_symbols = torch.round(y).to(torch.int32).cpu()
    y_string = _encode(y_symbols, indexes, model.gaussian_conditional)
    return Bitstreams(z=z_string, y=y_string, index_crc=index_crc(indexes[0]))


@torch.no_grad()
def decode_latent(model: ConditionalHyperprior, streams: Bitstreams, height: int, width: int) -> Tensor:
    """Entropy-decode y_hat [1, M, h, w] (integers, on the CPU); checks the index CRC first."""
    _check_ready(model)
    grid = z_grid(height, width)
    z_symbols = _decode(streams.z, _channel_indexes(model.arch.N, grid), model.entropy_bottleneck)
    indexes = model.integer_h_s(z_symbols)
    if index_crc(indexes[0]) != streams.index_crc:
        raise DeterminismError(
            "the decoder's scale indexes differ from the encoder's (index CRC mismatch): "
            "the file was written with other weights or is corrupt"
        )
    return _decode(streams.y, indexes, model.gaussian_conditional)


@torch.no_grad()
def synthesize(
    model: ConditionalHyperprior, y_symbols: Tensor, beta: float, height: int, width: int, quality: int | None = None
) -> Tensor:
    """Render the decoded latent in one mode: [1, 3, height, width] in [0, 1]."""
    device = model.entropy_bottleneck.quantiles.device
    y_hat = y_symbols.to(device=device, dtype=torch.float32)
    condition = torch.full((1,), float(beta), device=device)
    x_hat = model.synthesis(y_hat, condition, level_tensor(model, quality)).clamp_(0.0, 1.0)
    return x_hat[:, :, :height, :width]
