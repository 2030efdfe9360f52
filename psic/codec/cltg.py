"""Conditional Latent Trigger Generation (CLTG): the decoder's condition path.

The scalar condition beta (1 = protected, 0 = full) is embedded once per image and
turned into one per-channel bias for every decoder stage. The embedding and the MLP are
shared by all stages; only the final projections are per stage (as in the paper's code).
A gain network may also condition on its quality level: a learned vector per level is
added to the MLP's first layer, so that each level gets its own trigger. The vectors start
at zero, so a level-blind network's parameters carry over unchanged.

A per-channel bias is the same offset at every position of a stage's features: the content
shapes its effect only through the layers after it (the last stage's bias is a colour
cast). With ``branch_stages`` the first decoder stages also get a *trigger branch*: a 3x3
convolution of the stage's own features, scaled per channel by a gate the MLP computes
from beta (and the level). The branch sees the image, so its trigger can follow the
content. The gates start at zero, so a network without branches carries over unchanged
and grows them during training.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

from psic.errors import InvalidConditionError

FOURIER_FREQUENCIES = 10
EMBEDDING_DIM = 1 + 2 * FOURIER_FREQUENCIES  # beta itself plus a sin and a cos per frequency
TRAINED_CONDITIONS = (0.0, 1.0)


def check_condition(beta: Tensor) -> None:
    """Refuse condition values the decoder was never trained on (their output is undefined)."""
    if beta.dim() != 1:
        raise InvalidConditionError(f"beta must be a 1-D tensor of shape [batch], got shape {tuple(beta.shape)}")
    trained = torch.zeros_like(beta, dtype=torch.bool)
    for value in TRAINED_CONDITIONS:
        trained |= beta == value
    if not bool(trained.all()):
        raise InvalidConditionError("beta must be 0 (full) or 1 (protected); other values were never trained")


def fourier_embedding(beta: Tensor) -> Tensor:
    """Embed beta [B] as [beta, sin(2^k beta), cos(2^k beta) for k = 0..9] -> [B, 21]."""
    beta = beta.float()
    features = [beta]
    for k in range(FOURIER_FREQUENCIES):
        scaled = beta * float(2**k)
        features.extend((torch.sin(scaled), torch.cos(scaled)))
    return torch.stack(features, dim=1)


class StageTrigger(NamedTuple):
    """What the CLTG adds at one decoder stage: a bias [B, C, 1, 1], and a gate [B, C, 1, 1]
    for the stage's trigger branch (None where the stage has none)."""

    bias: Tensor
    gate: Tensor | None


class ConditionTrigger(nn.Module):
    """Maps beta (and, with ``levels``, the quality level) to each decoder stage's trigger."""

    def __init__(self, stage_channels: list[int], hidden: int, levels: int = 0, branch_stages: int = 0) -> None:
        super().__init__()
        if not 0 <= branch_stages <= len(stage_channels):
            raise ValueError(f"branch_stages must be in 0..{len(stage_channels)}")
        # A Sequential for its parameter names (mlp.0, mlp.2); forward runs its layers in a fixed order.
        self.mlp = nn.Sequential(
            nn.Linear(EMBEDDING_DIM, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.projections = nn.ModuleList(nn.Linear(hidden, c, bias=False) for c in stage_channels)
        self.level_embedding = nn.Parameter(torch.zeros(levels, hidden)) if levels else None
        branched = stage_channels[:branch_stages]
        self.gates = nn.ModuleList(nn.Linear(hidden, c, bias=False) for c in branched)
        self.branches = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for c in branched)
        for gate in self.gates:
            nn.init.zeros_(cast(nn.Linear, gate).weight)

    def forward(self, beta: Tensor, level: Tensor | None = None) -> list[StageTrigger]:
        """The level vector joins after the MLP's first linear layer (``mlp[0]``), before its ReLU:
        one added row per level, and the parameter names of a level-blind network stay valid."""
        check_condition(beta)
        if (level is None) != (self.level_embedding is None):
            raise ValueError("a level-conditioned trigger needs a level per image; a level-blind one takes none")
        first, second = self.mlp[0], self.mlp[2]
        assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear)
        hidden = fixed_order_linear(fourier_embedding(beta), first)
        if self.level_embedding is not None and level is not None:
            hidden = hidden + self.level_embedding[level]
        features = torch.relu(fixed_order_linear(torch.relu(hidden), second))
        biases = [_per_channel(features, proj) for proj in self.projections]
        gates = [_per_channel(features, gate) for gate in self.gates]
        return [StageTrigger(bias, gates[i] if i < len(gates) else None) for i, bias in enumerate(biases)]

    def add_to(self, stage: int, x: Tensor, trigger: StageTrigger) -> Tensor:
        """One stage's features with its trigger added."""
        x = x + trigger.bias
        if trigger.gate is not None:
            x = x + trigger.gate * self.branches[stage](x)
        return x


def _per_channel(features: Tensor, linear: nn.Module) -> Tensor:
    return fixed_order_linear(features, cast(nn.Linear, linear))[:, :, None, None]


def fixed_order_linear(x: Tensor, linear: nn.Linear) -> Tensor:
    """``linear(x)``, its sums taken left to right whatever the thread count.

    torch's CPU matrix-vector product splits its sums by thread count (3 or 6 threads give
    other last bits than 1 or 2), and these biases reach every decoded pixel; a running sum
    (cumsum, one order by definition) does not. The layers are small, so the cost is nil.
    """
    out = (x.unsqueeze(-2) * linear.weight).cumsum(-1)[..., -1]
    return out if linear.bias is None else out + linear.bias
