"""The two entropy models of the scale hyperprior: a learned factorized prior for z and a
zero-mean Gaussian conditional for y.

State-dict names, initialization (including its use of the random generator) and
arithmetic follow CompressAI's ``EntropyBottleneck`` and ``GaussianConditional``, which
the shipped weights were trained with, so those weights load, train and build the same
CDF tables as before. Only what PSIC uses is here: training likelihoods, the auxiliary
quantile loss and the tables; entropy coding itself lives in :mod:`psic.codec.coding`.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psic.codec.layers import LowerBound

CODER_PRECISION = 16  # bits of the range coder's CDF tables


def _noisy_or_rounded(values: Tensor, training: bool, medians: Tensor | None = None) -> Tensor:
    """Training adds uniform noise in [-0.5, 0.5); evaluation rounds around the medians."""
    if training:
        return values + torch.empty_like(values).uniform_(-0.5, 0.5)
    rounded = values.clone()
    if medians is not None:
        rounded -= medians
    rounded = torch.round(rounded)
    if medians is not None:
        rounded += medians
    return rounded


class _EntropyModel(nn.Module):
    """The CDF tables the range coder reads (empty until built) and the likelihood floor."""

    _offset: Tensor
    _quantized_cdf: Tensor
    _cdf_length: Tensor

    def __init__(self, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.register_buffer("_offset", torch.IntTensor())
        self.register_buffer("_quantized_cdf", torch.IntTensor())
        self.register_buffer("_cdf_length", torch.IntTensor())

    @staticmethod
    def _quantized_cdfs(pmf: Tensor, tail_mass: Tensor, pmf_length: Tensor, max_length: int) -> Tensor:
        """One integer CDF row per distribution: its pmf, then the tail mass as an escape symbol."""
        from psic.codec.compressai_parts import pmf_to_quantized_cdf

        cdf = torch.zeros((len(pmf_length), max_length + 2), dtype=torch.int32, device=pmf.device)
        for row, probabilities in enumerate(pmf):
            masses = torch.cat((probabilities[: pmf_length[row]], tail_mass[row]), dim=0)
            quantized = torch.IntTensor(pmf_to_quantized_cdf(masses.tolist(), CODER_PRECISION))
            cdf[row, : quantized.size(0)] = quantized
        return cdf


class EntropyBottleneck(_EntropyModel):
    """Ballé et al.'s non-parametric factorized density, one per channel, with learned quantiles."""

    target: Tensor

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        filters = (1, 3, 3, 3, 3, 1)
        self.stages = len(filters) - 1
        scale = init_scale ** (1 / self.stages)
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(self.stages):
            fill = math.log(math.expm1(1 / scale / filters[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, filters[i + 1], filters[i]), fill)))
            self.biases.append(nn.Parameter(torch.empty(channels, filters[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < self.stages - 1:
                self.factors.append(nn.Parameter(torch.zeros(channels, filters[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.Tensor([-init_scale, 0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.Tensor([-target, 0, target]))

    def _logits_cumulative(self, inputs: Tensor, stop_gradient: bool) -> Tensor:
        """The logit of the learned CDF at ``inputs`` [C, 1, n]."""

        def maybe_detached(p: Tensor) -> Tensor:
            return p.detach() if stop_gradient else p

        logits = inputs
        for i in range(self.stages):
            logits = torch.matmul(F.softplus(maybe_detached(self.matrices[i])), logits)
            logits = logits + maybe_detached(self.biases[i])
            if i < self.stages - 1:
                logits = logits + torch.tanh(maybe_detached(self.factors[i])) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs: Tensor, stop_gradient: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        lower = self._logits_cumulative(inputs - 0.5, stop_gradient)
        upper = self._logits_cumulative(inputs + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def forward(self, x: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """(z with noise or rounded, its likelihood), both shaped like ``x`` [B, C, ...]."""
        training = self.training if training is None else training
        order = [1, 0, *range(2, x.dim())]  # channels first; the permutation is its own inverse
        channels_first = x.permute(*order).contiguous()
        shape = channels_first.shape
        values = channels_first.reshape(shape[0], 1, -1)
        outputs = _noisy_or_rounded(values, training, self.quantiles[:, :, 1:2])
        likelihood = self.likelihood_lower_bound(self._likelihood(outputs)[0])
        back = lambda t: t.reshape(shape).permute(*order).contiguous()
        return back(outputs), back(likelihood)

    def loss(self) -> Tensor:
        """Auxiliary loss that moves the quantiles to the density's tails and median."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables between the learned quantiles; False if built and not forced."""
        if self._offset.numel() > 0 and not force:
            return False
        medians = self.quantiles[:, 0, 1]
        minima = torch.clamp(torch.ceil(medians - self.quantiles[:, 0, 0]).int(), min=0)
        maxima = torch.clamp(torch.ceil(self.quantiles[:, 0, 2] - medians).int(), min=0)
        self._offset = -minima
        pmf_start = medians - minima
        pmf_length = maxima + minima + 1
        max_length = int(pmf_length.max().item())
        samples = torch.arange(max_length, device=pmf_start.device)[None, :] + pmf_start[:, None, None]
        pmf, lower, upper = self._likelihood(samples, stop_gradient=True)
        tail_mass = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
        self._quantized_cdf = self._quantized_cdfs(pmf[:, 0, :], tail_mass, pmf_length, max_length)
        self._cdf_length = pmf_length + 2
        return True


def _standard_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(float(-(2**-0.5)) * x)


class GaussianConditional(_EntropyModel):
    """Zero-mean Gaussians whose scales come from the hyperprior, coded with a table of scales."""

    scale_table: Tensor
    scale_bound: Tensor

    def __init__(self, scale_table: None = None, scale_bound: float = 0.11, tail_mass: float = 1e-9) -> None:
        super().__init__()
        if scale_table is not None:
            raise ValueError("build the scale table with update_scale_table()")
        self.tail_mass = tail_mass
        self.lower_bound_scale = LowerBound(scale_bound)
        self.register_buffer("scale_table", torch.Tensor())
        self.register_buffer("scale_bound", torch.Tensor([float(scale_bound)]))

    def likelihood(self, values: Tensor, scales: Tensor) -> Tensor:
        """Probability of each (integer or noisy) value's unit bin under N(0, scale)."""
        scales = self.lower_bound_scale(scales)
        values = torch.abs(values)
        return _standard_normal_cdf((0.5 - values) / scales) - _standard_normal_cdf((-0.5 - values) / scales)

    def forward(self, inputs: Tensor, scales: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """(y with noise or rounded, its likelihood)."""
        training = self.training if training is None else training
        outputs = _noisy_or_rounded(inputs, training)
        return outputs, self.likelihood_lower_bound(self.likelihood(outputs, scales))

    def build_indexes(self, scales: Tensor) -> Tensor:
        """The float rule: the index of the first table scale at or above each scale."""
        scales = self.lower_bound_scale(scales)
        indexes = scales.new_full(scales.size(), len(self.scale_table) - 1).int()
        for s in self.scale_table[:-1]:
            indexes -= (scales <= s).int()
        return indexes

    @torch.no_grad()
    def update_scale_table(self, scale_table: Tensor, force: bool = False) -> bool:
        """Set the scales and build one CDF table per scale; False if built and not forced."""
        if self._offset.numel() > 0 and not force:
            return False
        self.scale_table = torch.Tensor(tuple(float(s) for s in scale_table)).to(self.scale_table.device)
        self._build_tables()
        return True

    def _build_tables(self) -> None:
        multiplier = -NormalDist().inv_cdf(self.tail_mass / 2)
        pmf_center = torch.ceil(self.scale_table * multiplier).int()
        pmf_length = 2 * pmf_center + 1
        max_length = int(torch.max(pmf_length).item())
        samples = torch.abs(torch.arange(max_length, device=pmf_center.device).int() - pmf_center[:, None]).float()
        scales = self.scale_table.unsqueeze(1).float()
        upper = _standard_normal_cdf((0.5 - samples) / scales)
        lower = _standard_normal_cdf((-0.5 - samples) / scales)
        self._quantized_cdf = self._quantized_cdfs(upper - lower, 2 * lower[:, :1], pmf_length, max_length)
        self._offset = -pmf_center
        self._cdf_length = pmf_length + 2
