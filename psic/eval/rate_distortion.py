"""Rate-distortion: PSIC's two decodes against JPEG, WebP and AVIF.

Rates are real file sizes: the whole ``.psic`` file (container included) and the whole
file Pillow writes for a baseline. PSNR is on 8-bit RGB, over all pixels and channels,
and averages are plain means of per-image figures.

Matched-bpp comparison (the headline): per image, each baseline is bisected to the
largest quality whose file is no larger in bpp than that image's PSIC file, and the
PSNRs are then averaged over images. Interpolating an average curve measured at fixed
qualities (:func:`codec_curve`, :func:`interpolate_psnr`) averages images whose rates
differ widely at one quality, so it is reported only as a secondary figure and for plots.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from psic import imageio

BASELINES = ("JPEG", "WEBP", "AVIF")
QUALITY_RANGE = (1, 100)
CURVE_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)

Curve = list[tuple[float, float]]


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of two 8-bit images of the same shape; ``inf`` when they are identical."""
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    mse = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def bits_per_pixel(num_bytes: int, image: np.ndarray) -> float:
    return num_bytes * 8 / (image.shape[0] * image.shape[1])


def psic_round_trip(
    original: np.ndarray,
    model_spec: str | os.PathLike | None,
    device: str | None,
    quality: int | None = None,
    effort: int = 0,
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Encode once (no keywords) and decode the real bitstream both ways: (file, full, protected)."""
    from psic import api

    data = api.encode(original, model=model_spec, device=device, quality=quality, effort=effort)
    full = np.asarray(api.decode(data, mode="full", model=model_spec, device=device))
    protected = np.asarray(api.decode(data, mode="protected", model=model_spec, device=device))
    return data, full, protected


def evaluate_psic(
    model_spec: str | os.PathLike | None,
    image_paths: Iterable[str | os.PathLike],
    device: str | None = "cpu",
    quality: int | None = None,
    effort: int = 0,
) -> list[dict]:
    """Per image: file bytes, bpp, PSNR of the full and protected decodes, and full vs protected."""
    rows = []
    for path in image_paths:
        original, _ = imageio.load_image(path)
        data, full, protected = psic_round_trip(original, model_spec, device, quality, effort)
        rows.append(
            {
                "image": Path(path).name,
                "width": original.shape[1],
                "height": original.shape[0],
                "bytes": len(data),
                "bpp": bits_per_pixel(len(data), original),
                "psnr_full": psnr(original, full),
                "psnr_protected": psnr(original, protected),
                "psnr_full_vs_protected": psnr(full, protected),
            }
        )
    return rows


def encode_baseline(original: np.ndarray, codec: str, quality: int) -> bytes:
    """One file of a Pillow codec (JPEG, WEBP or AVIF) at ``quality``, with its default settings otherwise."""
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, format=codec, quality=quality)
    return buffer.getvalue()


def decode_baseline(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def match_bpp(original: np.ndarray, codec: str, target_bpp: float) -> dict:
    """Bisect the quality to the largest one whose file has bpp <= ``target_bpp`` (the lowest if none does).

    Assumes size grows with quality; where a codec breaks that, the answer still meets
    the target but may not be the largest such quality.
    """
    files: dict[int, bytes] = {}

    def fits(quality: int) -> bool:
        if quality not in files:
            files[quality] = encode_baseline(original, codec, quality)
        return bits_per_pixel(len(files[quality]), original) <= target_bpp

    low, high = QUALITY_RANGE
    if fits(low):
        while low < high:  # invariant: ``low`` fits, everything above ``high`` does not
            middle = (low + high + 1) // 2
            if fits(middle):
                low = middle
            else:
                high = middle - 1
    data = files[low]
    return {
        "codec": codec,
        "target_bpp": target_bpp,
        "quality": low,
        "bpp": bits_per_pixel(len(data), original),
        "psnr": psnr(original, decode_baseline(data)),
    }


def evaluate_baselines(
    image_paths: Iterable[str | os.PathLike], target_bpps: Sequence[float], codecs: Sequence[str] = BASELINES
) -> dict[str, list[dict]]:
    """For each codec: one row per image and target bpp, from :func:`match_bpp`."""
    results: dict[str, list[dict]] = {codec: [] for codec in codecs}
    for path in image_paths:
        original, _ = imageio.load_image(path)
        for codec in codecs:
            for target in target_bpps:
                results[codec].append({"image": Path(path).name, **match_bpp(original, codec, target)})
    return results


def match_psic(
    image_paths: Sequence[str | os.PathLike], psic_rows: Sequence[dict], codecs: Sequence[str] = BASELINES
) -> dict[str, list[dict]]:
    """Each baseline matched per image to that image's PSIC bpp (``psic_rows`` in ``image_paths`` order)."""
    results: dict[str, list[dict]] = {codec: [] for codec in codecs}
    for path, row in zip(image_paths, psic_rows, strict=True):
        for codec, matched in evaluate_baselines([path], [row["bpp"]], codecs).items():
            results[codec].extend(matched)
    return results


def codec_curve(
    image_paths: Iterable[str | os.PathLike], codec: str, qualities: Sequence[int] = CURVE_QUALITIES
) -> Curve:
    """The average (bpp, PSNR) over the images at each fixed quality, sorted by bpp."""
    sums = np.zeros((len(qualities), 2))
    count = 0
    for path in image_paths:
        original, _ = imageio.load_image(path)
        for i, quality in enumerate(qualities):
            data = encode_baseline(original, codec, quality)
            sums[i] += (bits_per_pixel(len(data), original), psnr(original, decode_baseline(data)))
        count += 1
    if count == 0:
        raise ValueError("no images")
    return sorted((float(b), float(p)) for b, p in sums / count)


def interpolate_psnr(curve: Curve, bpp: float) -> float:
    """PSNR at ``bpp``, linear between a curve's neighbouring points; NaN outside the curve."""
    points = sorted(curve)
    rates = [b for b, _ in points]
    if not points or not rates[0] <= bpp <= rates[-1]:
        return float("nan")
    return float(np.interp(bpp, rates, [p for _, p in points]))


def summarize(
    psic_rows: Sequence[dict], matched: Mapping[str, Sequence[dict]], curves: Mapping[str, Curve] | None = None
) -> dict:
    """Mean bpp and PSNRs of PSIC, and per baseline its mean bpp and PSNR at matched bpp.

    ``matched`` comes from :func:`match_psic`; ``over_target`` counts images where even
    the lowest quality was larger than PSIC's file. With ``curves``, ``psnr_interp`` is
    the secondary figure: the average curve read at PSIC's mean bpp.
    """

    def mean(rows: Sequence[dict], key: str) -> float:
        return float(np.mean([row[key] for row in rows])) if rows else float("nan")

    summary: dict[str, Any] = {
        "images": len(psic_rows),
        **{key: mean(psic_rows, key) for key in ("bpp", "psnr_full", "psnr_protected", "psnr_full_vs_protected")},
        "baselines": {},
    }
    for codec, rows in matched.items():
        figures = {
            "bpp": mean(rows, "bpp"),
            "psnr": mean(rows, "psnr"),
            "over_target": sum(row["bpp"] > row["target_bpp"] for row in rows),
        }
        if curves is not None and codec in curves:
            figures["psnr_interp"] = interpolate_psnr(curves[codec], summary["bpp"])
        summary["baselines"][codec] = figures
    return summary


def ladder_qualities(model_spec: str | os.PathLike | None) -> list[int | None]:
    """Every level of a gain network, or the one rate (None) of a one-rate model."""
    from psic import api

    identity = api.load_model(model_spec, device="cpu").identity
    levels = identity.levels if identity is not None else 0
    return list(range(1, levels + 1)) if levels else [None]


def evaluate_ladder(
    model_spec: str | os.PathLike | None,
    image_paths: Sequence[str | os.PathLike],
    qualities: Sequence[int | None],
    device: str | None = "cpu",
    effort: int = 0,
) -> dict:
    """Per level: PSIC's rows, the baselines matched per image, the summary; then BD-rates over the ladder.

    BD-rates are against the baselines' average fixed-quality curves (:func:`codec_curve`),
    for the full and the protected decodes.
    """
    from psic.eval.bd_rate import bd_rate

    curves = {codec: codec_curve(image_paths, codec) for codec in BASELINES}
    levels: list[dict] = []
    summaries: list[dict] = []
    for quality in qualities:
        rows = evaluate_psic(model_spec, image_paths, device, quality, effort)
        matched = match_psic(image_paths, rows)
        summaries.append(summarize(rows, matched, curves))
        levels.append({"quality": quality, "summary": summaries[-1], "psic": rows, "baselines": matched})
    psic_curves = {
        mode: [(float(s["bpp"]), float(s[f"psnr_{mode}"])) for s in summaries] for mode in ("full", "protected")
    }
    bd = {mode: {codec: bd_rate(curves[codec], curve) for codec in BASELINES} for mode, curve in psic_curves.items()}
    return {"levels": levels, "curves": curves, "psic_curves": psic_curves, "bd_rate": bd}
