"""Integer hyper-synthesis: the y scale-table indexes, bit-identical on every machine.

A float h_s gives slightly different scales on different CPUs, thread counts and GPUs,
and an element near a scale-table boundary then gets another index: the y stream no
longer decodes. Here h_s runs on integers only. Weights are frozen to integers with a
power-of-two scale per output channel, activations are fixed point with
``ACTIVATION_FRACTION_BITS`` fractional bits, and rescaling is an exact rounding
right-shift. The arithmetic is carried in float64 tensors on the CPU, where every
product and partial sum is an integer below 2**53 (checked when the weights are frozen),
so the result is exact whatever the summation order, BLAS or thread count.
"""

from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATION_FRACTION_BITS = 10
ACTIVATION_LIMIT = 2**24 - 1  # saturate activations to keep every sum exact in float64
WEIGHT_BITS = 15  # |integer weight| < 2**WEIGHT_BITS
MAX_SHIFT = 24  # keeps integer biases far below the exactness bound
EXACT_LIMIT = 2**53


def _channel_shifts(weight: Tensor, out_dim: int) -> Tensor:
    """Largest per-output-channel power-of-two scale that keeps weights under WEIGHT_BITS."""
    other = [d for d in range(weight.dim()) if d != out_dim]
    peak = weight.abs().amax(dim=other).double().clamp_min(1e-30)
    shifts = torch.floor(torch.log2((2**WEIGHT_BITS - 1) / peak))
    return shifts.clamp(0, MAX_SHIFT).to(torch.int64)


class _IntegerLayer(nn.Module):
    """One frozen convolution: integer weights, integer bias, per-channel rescale shift."""

    weight: Tensor
    bias: Tensor
    shift: Tensor

    def __init__(self, layer: nn.Conv2d | nn.ConvTranspose2d) -> None:
        super().__init__()
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        out_dim = 1 if self.transposed else 0
        weight = layer.weight.detach().double().cpu()
        shifts = _channel_shifts(weight, out_dim)
        view = [1] * weight.dim()
        view[out_dim] = -1
        scale = torch.pow(2.0, shifts.double()).view(view)
        bias = layer.bias.detach().double().cpu() if layer.bias is not None else torch.zeros(shifts.numel())
        bias_scale = torch.pow(2.0, (shifts + ACTIVATION_FRACTION_BITS).double())
        self.register_buffer("weight", torch.round(weight * scale).to(torch.int16))  # |w| < 2**WEIGHT_BITS
        self.register_buffer("bias", torch.round(bias * bias_scale).to(torch.int64))
        self.register_buffer("shift", shifts)
        self.stride: tuple[int, ...] = layer.stride
        self.padding: tuple[int, ...] = tuple(layer.padding)  # type: ignore[arg-type]  # h_s pads by numbers
        self.output_padding: tuple[int, ...] = getattr(layer, "output_padding", (0, 0))
        self._check_exact()

    def _fan_in(self) -> int:
        """Most products any output element sums (transposed convs see a stride-reduced window)."""
        w = self.weight
        if self.transposed:
            taps = math.ceil(w.shape[2] / self.stride[0]) * math.ceil(w.shape[3] / self.stride[1])
            return w.shape[0] * taps
        return w.shape[1] * w.shape[2] * w.shape[3]

    def _check_exact(self) -> None:
        bound = self._fan_in() * (ACTIVATION_LIMIT + 1) * (2**WEIGHT_BITS) + int(self.bias.abs().max())
        if bound >= EXACT_LIMIT:
            raise ValueError("hyper-synthesis too wide for exact float64 integer arithmetic")

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight.cpu().double()
        if self.transposed:
            acc = F.conv_transpose2d(
                x, weight, stride=self.stride, padding=self.padding, output_padding=self.output_padding
            )
        else:
            acc = F.conv2d(x, weight, stride=self.stride, padding=self.padding)
        acc = acc + self.bias.cpu().double().view(1, -1, 1, 1)
        return _rounding_shift(acc, self.shift.cpu())


def _rounding_shift(acc: Tensor, shift: Tensor) -> Tensor:
    """floor((acc + 2^(s-1)) / 2^s) per channel: exact, since dividing by 2^s is exact."""
    divisor = torch.pow(2.0, shift.double()).view(1, -1, 1, 1)
    half = torch.floor(divisor / 2)
    return torch.floor((acc + half) / divisor)


class IntegerHyperSynthesis(nn.Module):
    """Frozen integer copy of h_s that maps z symbols to y scale-table indexes."""

    medians: Tensor
    thresholds: Tensor

    def __init__(self, h_s: nn.Sequential, medians: Tensor, scale_table: Tensor) -> None:
        super().__init__()
        convs = [m for m in h_s if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        relus = [m for m in h_s if isinstance(m, nn.ReLU)]
        if len(convs) != 3 or len(relus) != 3 or len(h_s) != 6:
            raise ValueError("expected h_s = (deconv, ReLU, deconv, ReLU, conv, ReLU)")
        self.layers = nn.ModuleList(_IntegerLayer(conv) for conv in convs)
        one = 2**ACTIVATION_FRACTION_BITS
        self.register_buffer("medians", torch.round(medians.detach().double().cpu().flatten() * one).to(torch.int64))
        # Index i is the number of table entries (all but the last) strictly below the scale,
        # exactly CompressAI's rule; the thresholds are frozen in fixed point.
        thresholds = torch.floor(scale_table.detach().double().cpu()[:-1] * one).to(torch.int64)
        self.register_buffer("thresholds", thresholds)

    @torch.no_grad()
    def forward(self, z_symbols: Tensor) -> Tensor:
        """z symbols [1, N, h, w] (integers) -> y indexes [1, M, 4h, 4w] (int32)."""
        one = float(2**ACTIVATION_FRACTION_BITS)
        x = z_symbols.detach().cpu().double() * one + self.medians.cpu().double().view(1, -1, 1, 1)
        x = x.clamp(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)
        for layer in self.layers:
            x = layer(x).clamp(0, ACTIVATION_LIMIT)  # every h_s layer is followed by ReLU
        scales = x.to(torch.int64)
        return torch.searchsorted(self.thresholds.cpu(), scales.flatten(), right=False).view(scales.shape).to(torch.int32)


def index_crc(indexes: Tensor) -> int:
    """CRC32 of one image's index map [M, h, w] as uint8 bytes in C order."""
    return zlib.crc32(indexes.to(torch.uint8).contiguous().cpu().numpy().tobytes())
