"""Bjøntegaard delta rate: the average bitrate difference of two rate-distortion curves at equal PSNR.

Each curve is log-rate as a function of PSNR, interpolated piecewise linearly (monotone,
so no overshoot between the few points a codec ladder gives) and averaged over the PSNR
range both curves cover. Negative means the test codec needs fewer bits than the anchor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

GRID_POINTS = 1000


def bd_rate(anchor: Sequence[tuple[float, float]], test: Sequence[tuple[float, float]]) -> float:
    """BD-rate (%) of ``test`` against ``anchor``, both lists of (bpp, PSNR); NaN without overlap.

    PSNR must grow with rate along each curve; points that break that are dropped (a curve
    keeps its upper envelope), since a log-rate-of-PSNR function cannot hold them.
    """
    a, t = _monotone(anchor), _monotone(test)
    if len(a) < 2 or len(t) < 2:
        return float("nan")
    low = max(a[0][1], t[0][1])
    high = min(a[-1][1], t[-1][1])
    if not low < high:
        return float("nan")
    grid = np.linspace(low, high, GRID_POINTS)
    log_a = np.interp(grid, [p for _, p in a], [np.log(r) for r, _ in a])
    log_t = np.interp(grid, [p for _, p in t], [np.log(r) for r, _ in t])
    return float((np.exp(np.mean(log_t - log_a)) - 1) * 100)


def _monotone(curve: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    kept: list[tuple[float, float]] = []
    for rate, quality in sorted(curve):
        if rate > 0 and np.isfinite(quality) and (not kept or quality > kept[-1][1]):
            kept.append((rate, quality))
    return kept


def format_bd_rate(value: float) -> str:
    """A BD-rate as a report prints it: "no overlap" where the curves share no PSNR range."""
    return "no overlap" if math.isnan(value) else f"{value:+.1f} %"
