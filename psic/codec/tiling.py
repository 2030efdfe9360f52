"""The transforms in overlapping tiles, so that memory stays bounded whatever the image size.

Each tile is computed with a margin of neighbouring latent positions and only its core is
kept. A margin at least as wide as the transform's receptive field makes every kept value
the same function of the same inputs as in a whole-image pass:

* g_a (four 5x5 stride-2 convolutions) and g_s (four 2x upsamplings, 5x5 transposed or 3x3
  sub-pixel) see at most 1.9 latent positions (30 pixels) to either side: margin 2.
* h_a and the integer h_s see at most 1.75 z positions to either side: margin 2.

The integer h_s is exact arithmetic, so its tiled indexes are bit-identical to a whole-image
pass (the bitstream depends on them). The float transforms can differ from a whole-image
pass in the last bits of a float, as any change of convolution shape can; see docs/security.md
for the measured pixel difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from psic.codec.network import ConditionalHyperprior

LATENT_STRIDE = 16  # pixels per y position
HYPER_STRIDE = 4  # y positions per z position
LATENT_MARGIN = 2
HYPER_MARGIN = 2
#: Tile cores: 64 y positions = 1024 pixels square (about 0.6 GB of activations in g_s),
#: 32 z positions = 128 y positions for the hyper-transforms.
LATENT_TILE = 64
HYPER_TILE = 32


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in grid units: the computed range and the kept core."""

    lo: int
    hi: int
    start: int
    stop: int

    def computed(self, scale: int = 1) -> slice:
        return slice(self.lo * scale, self.hi * scale)

    def core(self, scale: int = 1) -> slice:
        """The core within the computed range."""
        return slice((self.start - self.lo) * scale, (self.stop - self.lo) * scale)

    def kept(self, scale: int = 1) -> slice:
        return slice(self.start * scale, self.stop * scale)


def spans(length: int, tile: int, margin: int) -> list[Span]:
    """Cover 0..length with cores of ``tile`` and margins clipped to the grid."""
    return [
        Span(max(0, start - margin), min(length, start + tile + margin), start, min(length, start + tile))
        for start in range(0, length, tile)
    ]


def tiles(height: int, width: int, tile: int, margin: int) -> Iterator[tuple[Span, Span]]:
    """Row and column spans of every tile of a height x width grid."""
    columns = spans(width, tile, margin)
    for rows in spans(height, tile, margin):
        for cols in columns:
            yield rows, cols


PixelTile = Callable[[slice, slice], Tensor]


def pixel_tiles(image: np.ndarray | Tensor, device: torch.device) -> PixelTile:
    """Float [1, 3, h, w] tiles in [0, 1] of an HxWx3 uint8 array (edges replicated past its
    bottom and right, as :func:`psic.imageio.pad_to_multiple` does) or of a padded float tensor."""
    if isinstance(image, Tensor):
        return lambda rows, cols: image[:, :, rows, cols].to(device)

    def tile(rows: slice, cols: slice) -> Tensor:
        row_index = np.minimum(np.arange(rows.start, rows.stop), image.shape[0] - 1)
        col_index = np.minimum(np.arange(cols.start, cols.stop), image.shape[1] - 1)
        pixels = torch.from_numpy(image[np.ix_(row_index, col_index)]).to(device)
        return pixels.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)

    return tile


@torch.no_grad()
def analysis(model: ConditionalHyperprior, pixels: PixelTile, grid: tuple[int, int], level: Tensor | None) -> Tensor:
    """y [1, M, *grid] of a padded image given tile by tile."""
    device = model.entropy_bottleneck.quantiles.device
    y = torch.empty(1, model.arch.M, *grid, device=device)
    for rows, cols in tiles(*grid, LATENT_TILE, LATENT_MARGIN):
        part = model.analysis(pixels(rows.computed(LATENT_STRIDE), cols.computed(LATENT_STRIDE)), level)
        y[:, :, rows.kept(), cols.kept()] = part[:, :, rows.core(), cols.core()]
    return y


@torch.no_grad()
def hyper_analysis(model: ConditionalHyperprior, y: Tensor) -> Tensor:
    """z = h_a(|y|) [1, N, h/4, w/4]."""
    grid = (y.shape[2] // HYPER_STRIDE, y.shape[3] // HYPER_STRIDE)
    z = torch.empty(1, model.arch.N, *grid, device=y.device)
    for rows, cols in tiles(grid[0], grid[1], HYPER_TILE, HYPER_MARGIN):
        part = model.h_a(torch.abs(y[:, :, rows.computed(HYPER_STRIDE), cols.computed(HYPER_STRIDE)]))
        z[:, :, rows.kept(), cols.kept()] = part[:, :, rows.core(), cols.core()]
    return z


def scale_indexes(model: ConditionalHyperprior, z_symbols: Tensor) -> Tensor:
    """The integer h_s's y indexes [1, M, 4h, 4w] (int32, CPU), bit-identical to a whole pass."""
    grid = tuple(z_symbols.shape[2:])
    indexes = torch.empty(1, model.arch.M, grid[0] * HYPER_STRIDE, grid[1] * HYPER_STRIDE, dtype=torch.int32)
    for rows, cols in tiles(grid[0], grid[1], HYPER_TILE, HYPER_MARGIN):
        part = model.integer_h_s(z_symbols[:, :, rows.computed(), cols.computed()])
        indexes[:, :, rows.kept(HYPER_STRIDE), cols.kept(HYPER_STRIDE)] = part[
            :, :, rows.core(HYPER_STRIDE), cols.core(HYPER_STRIDE)
        ]
    return indexes


@torch.no_grad()
def synthesis(
    model: ConditionalHyperprior, y_hat: Tensor, beta: Tensor, level: Tensor | None, height: int, width: int
) -> np.ndarray:
    """Render y_hat [1, M, h, w] into an HxWx3 uint8 array (cropped to height x width)."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    for rows, cols in tiles(y_hat.shape[2], y_hat.shape[3], LATENT_TILE, LATENT_MARGIN):
        part = model.synthesis(y_hat[:, :, rows.computed(), cols.computed()], beta, level)
        core = part[0, :, rows.core(LATENT_STRIDE), cols.core(LATENT_STRIDE)]
        top, left = rows.start * LATENT_STRIDE, cols.start * LATENT_STRIDE
        visible = core[:, : height - top, : width - left]
        out[top : top + visible.shape[1], left : left + visible.shape[2]] = to_uint8(visible)
    return out


def to_uint8(x_hat: Tensor) -> np.ndarray:
    """[3, h, w] floats -> h x w x 3 uint8; NaN and infinities (from crafted latents) get defined values."""
    pixels = torch.nan_to_num(x_hat, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
    pixels = pixels.mul_(255.0).round_().clamp_(0, 255).to("cpu", dtype=torch.uint8)
    return pixels.permute(1, 2, 0).numpy()
