"""Privacy: image-text retrieval on the Flickr8k validation split, and the attack success rate.

Every validation photo is encoded once into a real ``.psic`` file (no keywords) and that
file is decoded both ways. Eight galleries are compared: the originals, the full decodes, the
protected decodes, the protected decodes re-saved as JPEG and downscaled 0.5x (as a platform
might), both decodes grey-world white balanced, and WebP at the PSIC file's bpp.

An ASR (%) is, among the pairs a reference gallery gets right at R@1, the share the attacked
gallery gets wrong; i2t counts images, t2i counts captions. Each ASR comes with those counts and
its 95 % Wilson interval: with a weak target an i2t ASR rests on a few dozen images. References: the full decode
(what the keyword holder sees; its white-balanced version for the white-balanced protected
decode, since balancing alone moves a small model), the original, and WebP at equal rate: the paper measures
against a separately trained codec without PSIC at the same rate, for which WebP is a cheap
stand-in (labelled so in every report).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image

from psic import imageio
from psic.datasets import CaptionedImages, read_captioned, split
from psic.eval.rate_distortion import bits_per_pixel, decode_baseline, encode_baseline, match_bpp, psic_round_trip, psnr

if TYPE_CHECKING:
    import torch

    from psic.vlp import VisionLanguageModel

GALLERIES = (
    "original", "full", "protected", "protected_jpeg", "protected_half", "full_balanced", "protected_balanced",
    "webp_matched",
)
# (name, reference gallery, attacked gallery)
ATTACKS = (
    ("asr", "full", "protected"),
    ("asr_jpeg", "full", "protected_jpeg"),
    ("asr_half", "full", "protected_half"),
    ("asr_balanced", "full_balanced", "protected_balanced"),  # white balance alone moves a small model
    ("asr_vs_original", "original", "protected"),
    ("asr_vs_webp", "webp_matched", "protected"),
)
TargetSpec = Union[str, tuple[str, str | os.PathLike], "VisionLanguageModel"]


@dataclass(frozen=True)
class Galleries:
    """The decoded images of one image set (uint8 HxWx3), kept in memory for every target model."""

    images: dict[str, list[np.ndarray]]
    file_bytes: list[int]

    def summary(self) -> dict[str, float]:
        original = self.images["original"]
        return {
            "bpp": float(np.mean([bits_per_pixel(n, im) for n, im in zip(self.file_bytes, original)])),
            "psnr_full": float(np.mean([psnr(o, f) for o, f in zip(original, self.images["full"])])),
            "psnr_protected": float(np.mean([psnr(o, p) for o, p in zip(original, self.images["protected"])])),
        }


def validation_set(data_root: str | os.PathLike, val_count: int = 1000, limit: int | None = None) -> CaptionedImages:
    """The fixed validation split (the one training holds out), optionally its first ``limit`` images."""
    _, val = split(read_captioned(os.fspath(data_root)), val_count)
    if limit is not None:
        val = CaptionedImages(val.root, val.names[:limit], val.captions[:limit])
    if not val.names:
        raise ValueError(f"no validation images in {data_root}")
    return val


def build_galleries(
    model_spec: str | os.PathLike | None,
    image_paths: Sequence[str | os.PathLike],
    jpeg_quality: int = 75,
    device: str | None = "cpu",
    quality: int | None = None,
    effort: int = 0,
) -> Galleries:
    """Encode each image once, decode the file in both modes, and derive the other galleries."""
    images: dict[str, list[np.ndarray]] = {name: [] for name in GALLERIES}
    file_bytes = []
    for path in image_paths:
        original, _ = imageio.load_image(path)
        data, full, protected = psic_round_trip(original, model_spec, device, quality, effort)
        webp = _webp_at(original, bits_per_pixel(len(data), original))
        derived = {"full_balanced": grey_world(full), **platform_versions(protected, jpeg_quality)}
        for name, image in {"original": original, "full": full, **derived, "webp_matched": webp}.items():
            images[name].append(image)
        file_bytes.append(len(data))
    return Galleries(images, file_bytes)


def platform_versions(protected: np.ndarray, jpeg_quality: int = 75) -> dict[str, np.ndarray]:
    """A protected decode as published, re-saved as JPEG, halved and white balanced (its galleries' entries)."""
    return {
        "protected": protected,
        "protected_jpeg": decode_baseline(encode_baseline(protected, "JPEG", jpeg_quality)),
        "protected_half": np.asarray(Image.fromarray(protected).reduce(2)),
        "protected_balanced": grey_world(protected),
    }


def grey_world(image: np.ndarray) -> np.ndarray:
    """White balance by the grey-world rule: scale each channel so that its mean is the mean of all three.

    It needs no reference, so anyone can apply it to a published image; an attack that is
    mostly a colour cast survives it only in part.
    """
    pixels = image.astype(np.float32)
    means = pixels.reshape(-1, 3).mean(axis=0)
    gains = means.mean() / np.maximum(means, 1.0)
    return np.clip(pixels * gains, 0, 255).round().astype(np.uint8)


def _webp_at(original: np.ndarray, bpp: float) -> np.ndarray:
    """WebP's decode at the largest quality whose file is no larger than ``bpp``."""
    quality = match_bpp(original, "WEBP", bpp)["quality"]
    return decode_baseline(encode_baseline(original, "WEBP", quality))


def evaluate_retrieval(
    model_spec: str | os.PathLike | None,
    vlp_specs: Sequence[TargetSpec],
    data_root: str | os.PathLike,
    val_count: int = 1000,
    limit: int | None = None,
    jpeg_quality: int = 75,
    device: str | None = "cpu",
    galleries: Galleries | None = None,
    batch_size: int = 64,
    quality: int | None = None,
    effort: int = 0,
) -> dict:
    """R@1/5/10 both ways for every gallery, and ASRs, against each target model.

    A target is a spec for :func:`psic.vlp.load_vlp`, a ``(spec, weights path)`` pair, or
    a built :class:`~psic.vlp.VisionLanguageModel`. Pass ``galleries`` (from
    :func:`build_galleries` on the same images) to skip the coding.
    """
    val = validation_set(data_root, val_count, limit)
    if galleries is None:
        paths = [val.image_path(i) for i in range(len(val.names))]
        galleries = build_galleries(model_spec, paths, jpeg_quality, device, quality, effort)
    if len(galleries.file_bytes) != len(val.names):
        raise ValueError(f"galleries hold {len(galleries.file_bytes)} images, the validation set {len(val.names)}")
    return {
        "model": None if model_spec is None else str(model_spec),
        "quality": quality,
        "effort": effort,
        "data": str(Path(data_root)),
        "images": len(val.names),
        "captions": sum(len(c) for c in val.captions),
        "jpeg_quality": jpeg_quality,
        **galleries.summary(),
        "targets": [_evaluate_target(_load_target(spec, device), val, galleries, batch_size) for spec in vlp_specs],
    }


def _load_target(spec: TargetSpec, device: str | None) -> VisionLanguageModel:
    from psic.codec.weights import resolve_device
    from psic.vlp import VisionLanguageModel, load_vlp

    if isinstance(spec, VisionLanguageModel):
        return spec
    name, weights = (spec, None) if isinstance(spec, str) else spec
    return load_vlp(name, device=resolve_device(device), weights=weights)


def _evaluate_target(vlp: VisionLanguageModel, val: CaptionedImages, galleries: Galleries, batch_size: int) -> dict:
    import torch

    from psic.retrieval import attack_counts, recall_at, retrieval_hits, wilson_interval

    captions = [caption for group in val.captions for caption in group]
    owner = torch.tensor([i for i, group in enumerate(val.captions) for _ in group])
    with torch.no_grad():
        texts = torch.cat([vlp.encode_text(captions[i : i + batch_size]) for i in range(0, len(captions), batch_size)])
        features = {name: _image_features(vlp, galleries.images[name], batch_size) for name in GALLERIES}
    texts = texts.float().cpu()
    recall = {name: recall_at(features[name], texts, owner) for name in GALLERIES}
    hits = {name: retrieval_hits(features[name], texts, owner, k=1) for name in GALLERIES}
    result: dict = {"target": vlp.name, "recall": recall, "asr_counts": {}}
    for key, reference, attacked in ATTACKS:
        counts = {
            direction: attack_counts(hits[reference][d], hits[attacked][d]) for d, direction in enumerate(("i2t", "t2i"))
        }
        result[key] = {direction: _percent(fooled, right) for direction, (fooled, right) in counts.items()}
        result["asr_counts"][key] = {
            direction: {"fooled": fooled, "of": right, "ci95": list(wilson_interval(fooled, right))}
            for direction, (fooled, right) in counts.items()
        }
    result["full_r1_pct_of_original"] = {
        direction: _percent(recall["full"][f"{direction}_R@1"], recall["original"][f"{direction}_R@1"])
        for direction in ("i2t", "t2i")
    }
    return result


def _image_features(vlp: VisionLanguageModel, images: list[np.ndarray], batch_size: int) -> torch.Tensor:
    """Normalized features of uint8 images, in batches of one size (one at a time where sizes differ)."""
    import torch

    chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    if len({image.shape for image in images}) > 1:
        chunks = [[image] for image in images]
    out = []
    for chunk in chunks:
        batch = torch.from_numpy(np.stack(chunk)).to(vlp.device).permute(0, 3, 1, 2).float().div_(255.0)
        out.append(vlp.encode_image(batch).float().cpu())
    return torch.cat(out)


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else float("nan")
