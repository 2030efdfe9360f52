"""Encoder-side latent refinement: more encode time for a better picture from the same file size.

The analysis transform g_a is an amortized guess at the latent that minimizes the model's
rate + lambda x distortion; a short gradient descent on one image's own latent closes part
of that gap (the "amortization gap" of Yang et al., NeurIPS 2020). Only the encoder changes:
the decoder, the file format and every existing file stay as they are, so any PSIC decoder
reads a refined file.

The descent keeps the coded hyper-latent z (so the coding distributions are fixed and the
rate term is the coder's own), uses the continuous latent's likelihood for the rate gradient
and a straight-through rounding for the distortion, and keeps the best rounded latent seen.
It works on tiles of the latent grid, so memory stays bounded as in :mod:`psic.codec.tiling`:
a tile's core latents are refined against the pixels they reach (the core and a band around
it), with the neighbours' latents as refined so far.
"""

from __future__ import annotations

import torch
from torch import Tensor

from psic.codec import tiling
from psic.codec.network import QUALITY_LAMBDAS, ConditionalHyperprior

LEARNING_RATE = 0.02  # Adam, cosine-decayed to zero over the steps
REFINE_TILE = 32  # latent positions (512 pixels) per tile core: about 1 GB for the backward pass
#: Latent positions around a core that are synthesized (so the band's pixels are exact) ...
CONTEXT = 2 * tiling.LATENT_MARGIN
#: ... and the band, in latent positions, whose pixels the core's latents reach and are scored.
REACH = tiling.LATENT_MARGIN


def distortion_weight(level: Tensor) -> float:
    """lambda x 255^2 of the level: the trade-off the network was trained for."""
    return QUALITY_LAMBDAS[int(level.item())] * 255**2


def refine(
    model: ConditionalHyperprior,
    pixels: tiling.PixelTile,
    y: Tensor,
    indexes: Tensor,
    level: Tensor,
    size: tuple[int, int],
    iterations: int,
) -> Tensor:
    """A refined copy of the coded latent y [1, M, h, w] of an image of ``size`` (height, width).

    ``indexes`` [1, M, h, w] are the coder's scale indexes of y (from the coded z, on the CPU).
    """
    refined = y.detach().clone()
    with torch.enable_grad():
        for rows, cols in tiling.tiles(y.shape[2], y.shape[3], REFINE_TILE, CONTEXT):
            _refine_tile(model, pixels, refined, indexes, level, size, (rows, cols), iterations)
    return refined


def _scored_pixels(rows: tiling.Span, cols: tiling.Span, size: tuple[int, int], like: Tensor) -> Tensor:
    """[1, 1, h, w] mask of the computed region's pixels that count: the core and the band the
    core's latents reach, inside the image (padding never counts)."""
    stride = tiling.LATENT_STRIDE
    mask = torch.zeros_like(like[:, :1])
    top = max(rows.start - REACH, rows.lo) * stride
    left = max(cols.start - REACH, cols.lo) * stride
    bottom = min(min(rows.stop + REACH, rows.hi) * stride, size[0])
    right = min(min(cols.stop + REACH, cols.hi) * stride, size[1])
    origin_row, origin_col = rows.lo * stride, cols.lo * stride
    if bottom > top and right > left:
        mask[:, :, top - origin_row : bottom - origin_row, left - origin_col : right - origin_col] = 1.0
    return mask


def _refine_tile(
    model: ConditionalHyperprior,
    pixels: tiling.PixelTile,
    latent: Tensor,
    indexes: Tensor,
    level: Tensor,
    size: tuple[int, int],
    tile: tuple[tiling.Span, tiling.Span],
    iterations: int,
) -> None:
    """Refine one tile's core in place; the latents around it stay fixed."""
    rows, cols = tile
    stride = tiling.LATENT_STRIDE
    target = pixels(rows.computed(stride), cols.computed(stride))
    scored = _scored_pixels(rows, cols, size, target)
    count = float(scored.sum().item())
    if count == 0:  # a core wholly in the padding: no pixel of the image depends on it alone
        return
    region = latent[:, :, rows.computed(), cols.computed()]
    core = (slice(None), slice(None), rows.core(), cols.core())
    mask = torch.zeros_like(region)
    mask[core] = 1.0
    table = model.gaussian_conditional.scale_table
    scales = table[indexes[:, :, rows.kept(), cols.kept()].to(table.device).long()]
    weight = distortion_weight(level)
    beta = torch.zeros(1, device=latent.device)

    def costs(values: Tensor) -> tuple[Tensor, float]:
        """(the differentiable objective, the true one of the rounded latent)."""
        current = values * mask + region * (1 - mask)
        rounded = current + (torch.round(current) - current).detach()  # straight-through
        x_hat = model.synthesis(rounded, beta, level).clamp(0.0, 1.0)
        distortion = ((x_hat - target).pow(2) * scored).sum() / (3 * count)
        rate = _bits(model, current[core], scales) / count
        with torch.no_grad():
            true = _bits(model, torch.round(current[core]), scales).item() / count + weight * distortion.item()
        return rate + weight * distortion, true

    variable = region.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([variable], lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    best_cost, best = float("inf"), region[core]
    for step in range(iterations + 1):  # the last pass only scores the last step's latent
        objective, true = costs(variable)
        if true < best_cost:
            best_cost, best = true, torch.round(variable.detach()[core])
        if step == iterations:
            break
        # Only the latent's gradient: the network's own stay uncomputed (and the model untouched).
        (variable.grad,) = torch.autograd.grad(objective, [variable])
        optimizer.step()
        schedule.step()
    region[core] = best


def _bits(model: ConditionalHyperprior, values: Tensor, scales: Tensor) -> Tensor:
    likelihood = model.gaussian_conditional.likelihood(values, scales)
    return -torch.log2(model.gaussian_conditional.likelihood_lower_bound(likelihood)).sum()
