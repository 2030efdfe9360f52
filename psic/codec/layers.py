"""Generalized divisive normalization (GDN) and the bounded reparametrization it trains with.

State-dict names and functions follow CompressAI's layers, on which the shipped weights
were trained, so those weights load and compute the same (GDN's channel mix is summed as a
matrix product, so values agree to float rounding); owning these few lines keeps
CompressAI's package import off every ``psic`` call.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _LowerBoundFunction(torch.autograd.Function):
    """max(x, bound), whose gradient still flows where it would push x up from the bound."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        x, bound = ctx.saved_tensors
        passes = (x >= bound) | (grad_output < 0)
        return passes * grad_output, None


class LowerBound(nn.Module):
    """Clamp from below without killing the gradient that moves a value off the bound."""

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return _LowerBoundFunction.apply(x, self.bound)


class NonNegative(nn.Module):
    """Stores sqrt(value + pedestal) so that a value trained towards zero stays well-conditioned."""

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, offset: float = 2**-18) -> None:
        super().__init__()
        pedestal = offset**2
        self.register_buffer("pedestal", torch.Tensor([pedestal]))
        self.lower_bound = LowerBound((minimum + pedestal) ** 0.5)

    def init(self, value: Tensor) -> Tensor:
        """The stored form of ``value``."""
        return torch.sqrt(torch.max(value + self.pedestal, self.pedestal))

    def forward(self, stored: Tensor) -> Tensor:
        return self.lower_bound(stored) ** 2 - self.pedestal


class GDN(nn.Module):
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (Ballé et al. 2016); ``inverse`` multiplies instead."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma_reparam = NonNegative()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma)
        norm = _mix_channels(x**2, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def _mix_channels(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """weight @ x + bias at every position of [B, C, H, W], summed the same way at any thread count.

    In NCHW layout torch's CPU 1x1 convolution is a GEMM at one thread and oneDNN at more,
    which sum in different orders, so decoded pixels would depend on torch.get_num_threads();
    a batched matrix product does not. Channels-last tensors (training) keep the convolution:
    torch takes oneDNN for them at every thread count.
    """
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return F.conv2d(x, weight[:, :, None, None], bias)
    batch, channels = x.shape[:2]
    return torch.baddbmm(bias.view(1, channels, 1), weight.expand(batch, -1, -1), x.flatten(2)).view(x.shape)
