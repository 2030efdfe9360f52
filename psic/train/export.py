"""Turn a training checkpoint into a shippable weights file.

The entropy bottleneck's quantiles are trained by their own small loss, one Adam step per
training step, and after a few thousand steps they are still far from converged; their
tails fix the range of the z CDF tables. They depend on nothing but the bottleneck's own
parameters, so export finishes fitting them (seconds, no data) before the tables are built.
"""

from __future__ import annotations

import os

import torch

from psic.codec.network import ConditionalHyperprior
from psic.codec.weights import weights_bytes
from psic.train.checkpoint import model_from_file

QUANTILE_STEPS = 3000
QUANTILE_LR = (0.2, 1e-3)  # Adam, decayed geometrically: far tails first, then settle


def fit_quantiles(model: ConditionalHyperprior, steps: int = QUANTILE_STEPS) -> float:
    """Minimize the bottleneck's auxiliary loss over its quantiles alone; returns the final loss."""
    quantiles = model.entropy_bottleneck.quantiles
    others = [p for p in model.parameters() if p is not quantiles]
    saved = [p.requires_grad for p in others]
    for p in others:
        p.requires_grad_(False)
    quantiles.requires_grad_(True)
    first, last = QUANTILE_LR
    optimizer = torch.optim.Adam([quantiles], lr=first)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=(last / first) ** (1 / max(steps, 1)))
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = model.aux_loss()
            loss.backward()
            optimizer.step()
            decay.step()
    finally:
        for p, flag in zip(others, saved):
            p.requires_grad_(flag)
    return float(model.aux_loss().detach())


def exported_model(
    source: str | os.PathLike, quantile_steps: int = QUANTILE_STEPS
) -> tuple[ConditionalHyperprior, float]:
    """(frozen fp32 model, final auxiliary loss) of a checkpoint (last.pt) or weights file, as export builds it."""
    model = model_from_file(source)
    aux = fit_quantiles(model, quantile_steps)
    model.eval().freeze_entropy_models()
    return model, aux


def export_weights(
    source: str | os.PathLike, *, name: str, quality: int | None = None, half: bool = True,
    quantile_steps: int = QUANTILE_STEPS,
) -> tuple[bytes, float]:
    """(safetensors bytes, final auxiliary loss) of a checkpoint (last.pt) or weights file."""
    model, aux = exported_model(source, quantile_steps)
    return weights_bytes(model, name=name, quality=quality, half=half), aux
