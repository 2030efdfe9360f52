"""Conditional Latent Trigger Generation (CLTG): the decoder's condition path.

The scalar condition beta (1 = protected, 0 = full) is embedded once per image and
turned into one per-channel bias for every decoder stage. The embedding and the MLP are
shared by all stages; only the final projections are per stage (as in the paper's code).
A gain network may also condition on its quality level: a learned vector per level is
added to the MLP's first layer, so that each level gets its own trigger. The vectors start
at zero, so a level-blind network's parameters carry over unchanged.
"""

from __future__ import annotations

from typing import cast

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


class ConditionBiases(nn.Module):
    """Maps beta (and, with ``levels``, the quality level) to one bias vector per decoder stage."""

    def __init__(self, stage_channels: list[int], hidden: int, levels: int = 0) -> None:
        super().__init__()
        # A Sequential for its parameter names (mlp.0, mlp.2); forward runs its layers in a fixed order.
        self.mlp = nn.Sequential(
            nn.Linear(EMBEDDING_DIM, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.projections = nn.ModuleList(nn.Linear(hidden, c, bias=False) for c in stage_channels)
        self.level_embedding = nn.Parameter(torch.zeros(levels, hidden)) if levels else None

    def forward(self, beta: Tensor, level: Tensor | None = None) -> list[Tensor]:
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
        return [fixed_order_linear(features, cast(nn.Linear, proj))[:, :, None, None] for proj in self.projections]


def fixed_order_linear(x: Tensor, linear: nn.Linear) -> Tensor:
    """``linear(x)``, its sums taken left to right whatever the thread count.

    torch's CPU matrix-vector product splits its sums by thread count (3 or 6 threads give
    other last bits than 1 or 2), and these biases reach every decoded pixel; a running sum
    (cumsum, one order by definition) does not. The layers are small, so the cost is nil.
    """
    out = (x.unsqueeze(-2) * linear.weight).cumsum(-1)[..., -1]
    return out if linear.bias is None else out + linear.bias
