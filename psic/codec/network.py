"""The PSIC networks: Ballé 2018 scale hyperprior with a CLTG-conditioned synthesis.

Two architectures share the analysis, the hyperprior and the integer hyper-synthesis:

- ``conditional-scale-hyperprior`` (v1): one rate per network, transposed-convolution
  synthesis. Kept so that files written with the first shipped models still decode.
- ``conditional-gain-hyperprior``: one network for a ladder of quality levels. Level q
  scales the latent by a learned per-channel gain before quantization (a finer or
  coarser step) and by a learned inverse gain before synthesis, as in Cui et al.'s gained
  autoencoders; its synthesis upsamples by sub-pixel convolution, which has no
  checkerboard bias, instead of transposed convolution. With ``level_trigger`` its CLTG
  also sees the level, so the protected decode's trigger can be as faint as each level's
  fidelity demands (a level-blind trigger has one strength for the whole ladder). With
  ``trigger_branches`` the CLTG also adds gated convolutions of the decoder's features
  (:mod:`psic.codec.cltg`), a trigger that can follow the image's content.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from psic.codec.cltg import ConditionTrigger
from psic.codec.entropy_models import EntropyBottleneck, GaussianConditional
from psic.codec.fixed_point import IntegerHyperSynthesis
from psic.codec.layers import GDN
from psic.codec.registry import ModelIdentity

ARCHITECTURE = "conditional-scale-hyperprior"
GAIN_ARCHITECTURE = "conditional-gain-hyperprior"
ARCHITECTURES = (ARCHITECTURE, GAIN_ARCHITECTURE)
DOWNSAMPLING = 64  # g_a (16) times h_a (4): the padding multiple of every input
SCALE_TABLE_LEVELS = 64
SCALE_TABLE_BOUNDS = (0.11, 256.0)

#: The rate targets of qualities 1-8 (lambda x 255^2 x MSE): CompressAI's ladder, but quality 1 at
#: 0.0013 instead of 0.0018 (since segment 14) so that the bottom level goes under 0.2 bpp.
QUALITY_LAMBDAS = (0.0013, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


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
    levels: int = 0  # quality levels of a gain network; 0 for a one-rate network
    level_trigger: bool = False  # the CLTG is conditioned on the level too (gain networks only)
    trigger_branches: int = 0  # decoder stages, from the first, whose CLTG has a trigger branch (0-3)

    def __post_init__(self) -> None:
        if self.name not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.name!r}")
        if (self.name == GAIN_ARCHITECTURE) != (self.levels > 0):
            raise ValueError("a gain network has levels >= 1; a one-rate network has none")
        if self.level_trigger and not self.levels:
            raise ValueError("only a gain network can condition its trigger on the level")
        if not 0 <= self.trigger_branches <= 3:
            raise ValueError("trigger_branches must be in 0..3 (the synthesis's feature stages)")

    @property
    def variable_rate(self) -> bool:
        return self.levels > 0


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1
    )


class Subpixel(nn.Sequential):
    """2x upsampling: a 3x3 convolution to 4x the channels, then a pixel shuffle.

    It can represent a 5x5 stride-2 transposed convolution exactly (see
    :func:`psic.train.warm_start.subpixel_from_deconv`), and more: every output phase
    gets its own full 3x3 kernel.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2))

    @property
    def conv(self) -> nn.Conv2d:
        conv = self[0]
        assert isinstance(conv, nn.Conv2d)
        return conv


class ConditionalSynthesis(nn.Module):
    """Ballé's g_s with a CLTG trigger (a bias, and on the first stages maybe a branch) after every upsampling stage."""

    def __init__(
        self, N: int, M: int, cond_hidden: int, subpixel: bool = False, levels: int = 0, branch_stages: int = 0
    ) -> None:
        super().__init__()
        upsample = Subpixel if subpixel else _deconv
        self.deconvs = nn.ModuleList([upsample(M, N), upsample(N, N), upsample(N, N), upsample(N, 3)])
        self.igdns = nn.ModuleList(GDN(N, inverse=True) for _ in range(3))
        self.condition = ConditionTrigger([N, N, N, 3], cond_hidden, levels, branch_stages)

    def forward(self, y_hat: Tensor, beta: Tensor, level: Tensor | None = None) -> Tensor:
        triggers = self.condition(beta.to(y_hat.device), None if level is None else level.to(y_hat.device))
        x = y_hat
        for stage, deconv in enumerate(self.deconvs):
            x = self.condition.add_to(stage, deconv(x), triggers[stage])
            if stage < len(self.igdns):
                x = self.igdns[stage](x)
        return x


class LatentGains(nn.Module):
    """Per-level, per-channel gain (before quantization) and inverse gain (before synthesis)."""

    def __init__(self, levels: int, channels: int) -> None:
        super().__init__()
        # Level 3 (CompressAI's default lambda) starts at unit gain; each level is ~1.8 dB apart.
        steps = torch.arange(levels, dtype=torch.float32) - 2
        start = (steps * math.log(1.23)).view(-1, 1).expand(levels, channels).clone()
        self.log_gain = nn.Parameter(start)
        self.log_inverse_gain = nn.Parameter(-start)

    def gain(self, level: Tensor) -> Tensor:
        """[B] level indexes (0-based) -> [B, M, 1, 1] gains."""
        return torch.exp(self.log_gain[level])[:, :, None, None]

    def inverse_gain(self, level: Tensor) -> Tensor:
        return torch.exp(self.log_inverse_gain[level])[:, :, None, None]


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
        trigger_levels = arch.levels if arch.level_trigger else 0
        self.g_s = ConditionalSynthesis(
            N, M, arch.cond_hidden, subpixel=arch.variable_rate, levels=trigger_levels,
            branch_stages=arch.trigger_branches,
        )
        self.gains = LatentGains(arch.levels, M) if arch.variable_rate else None
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.integer_h_s: IntegerHyperSynthesis = self._integer_h_s()
        self.identity: ModelIdentity | None = None  # set when loaded from a weights file

    def _integer_h_s(self) -> IntegerHyperSynthesis:
        medians = self.entropy_bottleneck.quantiles[:, 0, 1]
        return IntegerHyperSynthesis(self.h_s, medians, scale_table())

    def check_level(self, level: Tensor | None) -> None:
        """A gain network needs a level in 0..levels-1 per image; a one-rate network takes none."""
        if self.gains is None:
            if level is not None:
                raise ValueError("this one-rate network has no quality levels")
            return
        if level is None:
            raise ValueError(f"this network needs a quality level (0..{self.arch.levels - 1})")
        if level.dtype != torch.long or bool((level < 0).any()) or bool((level >= self.arch.levels).any()):
            raise ValueError(f"levels must be integers in 0..{self.arch.levels - 1}")

    def analysis(self, x: Tensor, level: Tensor | None = None) -> Tensor:
        """The latent that is quantized and coded (scaled by the level's gain)."""
        self.check_level(level)
        y = self.g_a(x)
        if self.gains is None or level is None:  # check_level allows no level only without gains
            return y
        return y * self.gains.gain(level.to(y.device))

    def synthesis(self, y_hat: Tensor, beta: Tensor, level: Tensor | None = None) -> Tensor:
        """Render a quantized latent in the mode ``beta`` (unclamped)."""
        self.check_level(level)
        if self.gains is not None and level is not None:  # check_level demands a level with gains
            y_hat = y_hat * self.gains.inverse_gain(level.to(y_hat.device))
        return self.g_s(y_hat, beta, level if self.arch.level_trigger else None)

    def forward(self, x: Tensor, beta: Tensor, level: Tensor | None = None) -> dict:
        """Training/evaluation pass with noise (train) or rounding (eval) quantization."""
        y = self.analysis(x, level)
        z = self.h_a(torch.abs(y))
        # The rate terms stay in fp32 under bf16 autocast: bf16's 8-bit mantissa would
        # make the likelihoods, and so the rate the model learns, noticeably wrong.
        with torch.autocast(x.device.type, enabled=False):
            z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
            scales = self.h_s(z_hat)
            y_hat, y_likelihoods = self.gaussian_conditional(y.float(), scales)
        x_hat = self.synthesis(y_hat, beta, level)
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
