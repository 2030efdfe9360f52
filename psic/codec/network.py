"""The PSIC network: Ballé 2018 scale hyperprior with a CLTG-conditioned synthesis."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from psic.codec.cltg import ConditionBiases
from psic.codec.compressai_parts import GDN, EntropyBottleneck, GaussianConditional
from psic.codec.fixed_point import IntegerHyperSynthesis
from psic.codec.registry import ModelIdentity

ARCHITECTURE = "conditional-scale-hyperprior"
DOWNSAMPLING = 64  # g_a (16) times h_a (4): the padding multiple of every input
SCALE_TABLE_LEVELS = 64
SCALE_TABLE_BOUNDS = (0.11, 256.0)


def scale_table() -> Tensor:
    """CompressAI's 64 log-spaced Gaussian scales; fixed so files never depend on it changing."""
    low, high = SCALE_TABLE_BOUNDS
    return torch.exp(torch.linspace(math.log(low), math.log(high), SCALE_TABLE_LEVELS))


@dataclass(frozen=True)
class Architecture:
    """The numbers that fix a network's shapes (stored in every weights file)."""

    N: int
    M: int
    cond_hidden: int
    name: str = ARCHITECTURE


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1
    )


class ConditionalSynthesis(nn.Module):
    """Ballé's g_s with a CLTG bias after every transposed convolution."""

    def __init__(self, N: int, M: int, cond_hidden: int) -> None:
        super().__init__()
        self.deconvs = nn.ModuleList([_deconv(M, N), _deconv(N, N), _deconv(N, N), _deconv(N, 3)])
        self.igdns = nn.ModuleList(GDN(N, inverse=True) for _ in range(3))
        self.condition = ConditionBiases([N, N, N, 3], cond_hidden)

    def forward(self, y_hat: Tensor, beta: Tensor) -> Tensor:
        biases = self.condition(beta.to(y_hat.device))
        x = y_hat
        for stage, deconv in enumerate(self.deconvs):
            x = deconv(x) + biases[stage]
            if stage < len(self.igdns):
                x = self.igdns[stage](x)
        return x


class ConditionalHyperprior(nn.Module):
    """Scale hyperprior whose decoder renders the protected (beta=1) or full (beta=0) image."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        N, M = arch.N, arch.M
        self.arch = arch
        self.g_a = nn.Sequential(
            _conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M)
        )
        self.h_a = nn.Sequential(
            _conv(M, N, 3, 1), nn.ReLU(inplace=True), _conv(N, N), nn.ReLU(inplace=True), _conv(N, N)
        )
        self.h_s = nn.Sequential(
            _deconv(N, N), nn.ReLU(inplace=True), _deconv(N, N), nn.ReLU(inplace=True),
            _conv(N, M, 3, 1), nn.ReLU(inplace=True),
        )
        self.g_s = ConditionalSynthesis(N, M, arch.cond_hidden)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.integer_h_s = self._integer_h_s()
        self.identity: ModelIdentity | None = None  # set when loaded from a weights file

    def _integer_h_s(self) -> IntegerHyperSynthesis:
        medians = self.entropy_bottleneck.quantiles[:, 0, 1]
        return IntegerHyperSynthesis(self.h_s, medians, scale_table())

    def forward(self, x: Tensor, beta: Tensor) -> dict:
        """Training/evaluation pass with noise (train) or rounding (eval) quantization."""
        y = self.g_a(x)
        z = self.h_a(torch.abs(y))
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales = self.h_s(z_hat)
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales)
        x_hat = self.g_s(y_hat, beta)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def aux_loss(self) -> Tensor:
        """Loss of the entropy bottleneck's quantiles (trained by a separate optimizer)."""
        return self.entropy_bottleneck.loss()

    @torch.no_grad()
    def freeze_entropy_models(self) -> None:
        """Build the CDF tables and the integer h_s that every bitstream depends on.

        Run once after training, before saving: the tables and integer weights are then
        stored in the weights file, and no machine that decodes ever recomputes them.
        """
        self.entropy_bottleneck.update(force=True)
        self.gaussian_conditional.update_scale_table(scale_table(), force=True)
        self.integer_h_s = self._integer_h_s().to(self.entropy_bottleneck.quantiles.device)

    def is_frozen(self) -> bool:
        return self.entropy_bottleneck._offset.numel() > 0 and self.gaussian_conditional._offset.numel() > 0
