"""The models and inputs the benchmark scripts share: PSIC (random, a weights file or a
checkpoint exported in memory by the library), CompressAI's backbone, a synthetic photo."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

DEFAULT_ARCH = {"N": 128, "M": 192, "cond_hidden": 128}


def psic_model(weights: str | None = None, checkpoint: str | None = None, seed: int = 0):
    """(frozen model, where it came from): a weights file, a checkpoint as export builds it, or random."""
    import torch

    from psic.codec.network import Architecture, ConditionalHyperprior

    if weights:
        from psic.codec.weights import load_weights_file

        return load_weights_file(weights, None, "cpu"), f"weights file {weights}"
    if checkpoint:
        from psic.train.export import exported_model

        model, _ = exported_model(checkpoint)
        return model.requires_grad_(False), f"checkpoint {checkpoint}, exported in memory (fp32)"
    torch.manual_seed(seed)
    model = ConditionalHyperprior(Architecture(**DEFAULT_ARCH)).eval().requires_grad_(False)
    model.freeze_entropy_models()
    return model, f"RANDOM weights (seed {seed}, N=128 M=192 cond_hidden=128)"


def compressai_model(N: int, M: int, seed: int):
    """CompressAI's ScaleHyperprior of the same size, random weights, tables built."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        from compressai.models import ScaleHyperprior

    torch.manual_seed(seed)
    model = ScaleHyperprior(N=N, M=M).eval().requires_grad_(False)
    model.update(force=True)
    return model


def synthetic_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like image with texture: gradients, soft blobs, stripes, edges, grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = xx / width, yy / height
    img = np.stack([60 + 140 * u, 50 + 120 * v, 170 - 90 * u * v], axis=-1)
    for _ in range(12):  # soft coloured blobs
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
        blob = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-60, 60, size=3)
    # a textured region (fabric-like stripes) and a sharp-edged rectangle
    stripes = 18 * np.sin(2 * np.pi * (xx * 0.11 + yy * 0.07)) * (u > 0.55) * (v > 0.5)
    img += stripes[..., None]
    rect = (u > 0.1) & (u < 0.35) & (v > 0.6) & (v < 0.9)
    img[rect] = img[rect] * 0.5 + np.array([200.0, 190.0, 60.0]) * 0.5
    # grain: white noise plus a little low-pass noise so it is not pure i.i.d.
    grain = rng.normal(0, 5, img.shape)
    coarse = rng.normal(0, 10, (height // 8 + 1, width // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:height, :width]
    img += grain + coarse * 0.5
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def image_of_size(path: str, width: int, height: int) -> np.ndarray:
    """Load ``path`` and bring it to ``width`` x ``height``: scale to cover, then centre-crop."""
    from PIL import Image

    from psic.imageio import load_image

    rgb, _ = load_image(path)
    im = Image.fromarray(rgb)
    scale = max(width / im.width, height / im.height)
    if scale > 1:
        im = im.resize((round(im.width * scale + 0.5), round(im.height * scale + 0.5)), Image.LANCZOS)
    left, top = (im.width - width) // 2, (im.height - height) // 2
    return np.asarray(im.crop((left, top, left + width, top + height)).convert("RGB")).copy()


def timed(call: Callable[[], object]) -> tuple[float, object]:
    """(milliseconds, result) of one call."""
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000.0, result


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}
