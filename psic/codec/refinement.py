"""Encoder-side latent refinement: more encode time for a better picture from the same file size.

The analysis transform g_a is an amortized guess at the latent that minimizes the model's
rate + lambda x distortion; a short gradient descent on one image's own latent closes part
of that gap (the "amortization gap" of Yang et al., NeurIPS 2020). Only the encoder changes:
the decoder, the file format and every existing file stay as they are, so any PSIC decoder
reads a refined file.

The descent keeps the coded hyper-latent z (so the coding distributions are fixed and the
rate term is the coder's own), uses the continuous latent's likelihood for the rate gradient
and a straight-through rounding for the distortion, and keeps the best rounded latent seen.
It works on tiles of the latent grid, so memory stays bounded as in :mod:`psic.codec.tiling`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from psic.codec import tiling
from psic.codec.network import QUALITY_LAMBDAS, ConditionalHyperprior

LEARNING_RATE = 0.02  # Adam, cosine-decayed to zero over the steps
REFINE_TILE = 32  # latent positions (512 pixels) per tile: about 1 GB for the backward pass


def distortion_weight(model: ConditionalHyperprior, level: Tensor | None) -> float:
    """lambda x 255^2 of the level: the trade-off the network was trained for."""
    if level is None:
        raise ValueError("latent refinement needs a gain network (its levels fix the rate-distortion trade-off)")
    return QUALITY_LAMBDAS[int(level.item())] * 255**2


def refine(
    model: ConditionalHyperprior,
    pixels: tiling.PixelTile,
    y: Tensor,
    indexes: Tensor,
    level: Tensor | None,
    size: tuple[int, int],
    iterations: int,
) -> Tensor:
    """A refined copy of the coded latent y [1, M, h, w] of an image of ``size`` (height, width).

    ``indexes`` are the coder's scale indexes of y (from the coded z); tiles are refined in
    order, each against its neighbours' latents as refined so far.
    """
    refined = y.detach().clone()
    if iterations <= 0:
        return refined
    weight = distortion_weight(model, level)
    scales = model.gaussian_conditional.scale_table[indexes.long()].to(y.device)
    with torch.enable_grad():
        for rows, cols in tiling.tiles(y.shape[2], y.shape[3], REFINE_TILE, tiling.LATENT_MARGIN):
            _refine_tile(model, pixels, refined, scales, level, size, (rows, cols), weight, iterations)
    return refined


def _refine_tile(
    model: ConditionalHyperprior,
    pixels: tiling.PixelTile,
    latent: Tensor,
    scales: Tensor,
    level: Tensor | None,
    size: tuple[int, int],
    tile: tuple[tiling.Span, tiling.Span],
    weight: float,
    iterations: int,
) -> None:
    """Refine one tile's core in place; its margin (the neighbours' latents) stays fixed."""
    rows, cols = tile
    stride = tiling.LATENT_STRIDE
    region = latent[:, :, rows.computed(), cols.computed()]
    core = (slice(None), slice(None), rows.core(), cols.core())
    target = pixels(rows.computed(stride), cols.computed(stride))
    # Pixels of the tile's core that lie inside the image (padding does not count).
    valid = torch.zeros_like(target[:, :1])
    height = min(size[0], rows.stop * stride) - rows.start * stride
    width = min(size[1], cols.stop * stride) - cols.start * stride
    top, left = (rows.start - rows.lo) * stride, (cols.start - cols.lo) * stride
    valid[:, :, top : top + height, left : left + width] = 1.0
    count = float(height * width)
    mask = torch.zeros_like(region)
    mask[core] = 1.0
    tile_scales = scales[:, :, rows.computed(), cols.computed()][core]
    beta = torch.zeros(1, device=latent.device)

    variable = region.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([variable], lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    best_loss, best = float("inf"), region.clone()
    for _ in range(iterations):
        current = variable * mask + region * (1 - mask)
        rounded = current + (torch.round(current) - current).detach()  # straight-through
        x_hat = model.synthesis(rounded, beta, level).clamp(0.0, 1.0)
        distortion = ((x_hat - target).pow(2) * valid).sum() / (3 * count)
        values = current[core]
        rate = _bits(model, values, tile_scales) / count
        with torch.no_grad():
            true_loss = (_bits(model, torch.round(values), tile_scales) / count + weight * distortion).item()
            if true_loss < best_loss:
                best_loss, best = true_loss, torch.round(current).detach()
        # Only the latent's gradient: the network's own stay uncomputed (and the model untouched).
        (variable.grad,) = torch.autograd.grad(rate + weight * distortion, [variable])
        optimizer.step()
        schedule.step()
    latent[:, :, rows.computed(), cols.computed()][core] = best[core]


def _bits(model: ConditionalHyperprior, values: Tensor, scales: Tensor) -> Tensor:
    likelihood = model.gaussian_conditional.likelihood(values, scales)
    return -torch.log2(model.gaussian_conditional.likelihood_lower_bound(likelihood)).sum()
