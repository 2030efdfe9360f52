"""Data packs: the training data of a run as one small file that travels to a GPU machine.

A GPU machine here gets the working tree and at most 64 MiB in all, and it has neither the
data sets nor the MiniLM text tower. A pack holds JPEG-coded training images (captioned ones
downsized, caption-less ones as crops), the target's features of their captions (fp16), and
which target those features belong to; with it, training needs only the target's image tower.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from psic.datasets import image_folder, read_captioned, split
from psic.train.batches import ImagePool

PACK_VERSION = 1


@dataclass(frozen=True)
class PackSettings:
    images: int = 2600  # captioned training images kept (the first by a fixed shuffle); fits 64 MiB with the tree
    size: int = 128  # side they are resized to
    captions_per_image: int = 2
    crops_per_photo: int = 1  # caption-less photos: random crops of ``crop`` px
    crop: int = 256
    quality: int = 85
    val_count: int = 1000
    seed: int = 0


@dataclass
class Pack:
    captioned: ImagePool | None
    folder: ImagePool | None
    text_features: torch.Tensor | None
    meta: dict


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _concat(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0, *(len(b) for b in blobs)]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def build_pack(
    captioned: str | None, folder: str | None, vlp, target: str, target_sha256: str, settings: PackSettings
) -> dict:
    """The arrays of a pack (``np.savez`` them); ``vlp`` (the target) supplies the caption features."""
    rng = np.random.default_rng(settings.seed)
    arrays: dict[str, np.ndarray] = {}
    meta = {"version": PACK_VERSION, "target": target, "target_sha256": target_sha256, "settings": settings.__dict__}
    if captioned:
        train_set, _ = split(read_captioned(captioned), settings.val_count)
        order = rng.permutation(len(train_set.names))[: settings.images]
        blobs, captions, counts = [], [], []
        for i in sorted(order):
            with Image.open(train_set.image_path(i)) as im:
                small = im.convert("RGB").resize((settings.size, settings.size), Image.Resampling.BICUBIC)
            blobs.append(_jpeg(small, settings.quality))
            chosen = list(train_set.captions[i][: settings.captions_per_image])
            captions.extend(chosen)
            counts.append(len(chosen))
        arrays["captioned_jpeg"], arrays["captioned_offsets"] = _concat(blobs)
        arrays["caption_offsets"] = np.cumsum([0, *counts]).astype(np.int64)
        features = torch.cat([vlp.encode_text(captions[k : k + 512]).cpu() for k in range(0, len(captions), 512)])
        arrays["caption_features"] = features.half().numpy()
    if folder:
        blobs = []
        for path in image_folder(folder):
            with Image.open(path) as im:
                photo = im.convert("RGB")
            for _ in range(settings.crops_per_photo):
                top = int(rng.integers(0, photo.height - settings.crop + 1))
                left = int(rng.integers(0, photo.width - settings.crop + 1))
                box = (left, top, left + settings.crop, top + settings.crop)
                blobs.append(_jpeg(photo.crop(box), settings.quality))
        arrays["folder_jpeg"], arrays["folder_offsets"] = _concat(blobs)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def save_pack(path: str | os.PathLike, arrays: dict) -> None:
    tmp = Path(str(path) + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _decode_all(data: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    out = []
    for start, end in pairwise(offsets):
        with Image.open(io.BytesIO(data[start:end].tobytes())) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


def load_pack(path: str | os.PathLike) -> Pack:
    """Decode a pack into image pools and caption features (CPU tensors)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].tobytes())
    if meta.get("version") != PACK_VERSION:
        raise ValueError(f"{path} is a data pack of version {meta.get('version')}, not {PACK_VERSION}")
    captioned = folder = features = None
    if "captioned_jpeg" in arrays:
        images = _decode_all(arrays["captioned_jpeg"], arrays["captioned_offsets"])
        bounds = arrays["caption_offsets"]
        captions = [list(range(int(a), int(b))) for a, b in pairwise(bounds)]
        captioned = ImagePool(images, captions)
        features = torch.from_numpy(arrays["caption_features"]).float()
    if "folder_jpeg" in arrays:
        images = _decode_all(arrays["folder_jpeg"], arrays["folder_offsets"])
        folder = ImagePool(images, [[] for _ in images])
    return Pack(captioned, folder, features, meta)
