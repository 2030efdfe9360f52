"""In-memory training batches: random crops and flips of decoded images, with captions.

Images are decoded once into uint8 arrays (Flickr8k at 224 px is under 1 GB), which on
a small machine is far faster than a DataLoader that decodes JPEGs every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from psic.datasets import CaptionedImages


@dataclass
class Batch:
    images: Tensor  # [B, 3, crop, crop] in [0, 1]
    caption_index: Tensor  # [B] long: index into the caption feature table, -1 = no caption


class ImagePool:
    """Decoded images (any sizes >= crop) and, per image, the indexes of its captions."""

    def __init__(self, images: list[np.ndarray], captions: list[list[int]]) -> None:
        if not images:
            raise ValueError("no training images")
        self.images = images
        self.captions = captions

    @classmethod
    def from_captioned(cls, data: CaptionedImages, first_caption: int = 0) -> ImagePool:
        images, captions, k = [], [], first_caption
        for i in range(len(data.names)):
            images.append(_decode(data.image_path(i)))
            captions.append(list(range(k, k + len(data.captions[i]))))
            k += len(data.captions[i])
        return cls(images, captions)

    @classmethod
    def from_folder(cls, paths: list[Path]) -> ImagePool:
        return cls([_decode(p) for p in paths], [[] for _ in paths])

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, count: int, crop: int, rng: np.random.Generator) -> Batch:
        picks = rng.integers(0, len(self.images), size=count)
        crops = np.stack([_random_crop(self.images[i], crop, rng) for i in picks])
        captions = [self.captions[i][rng.integers(len(self.captions[i]))] if self.captions[i] else -1 for i in picks]
        images = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)
        return Batch(images, torch.tensor(captions, dtype=torch.long))


def concat(a: Batch, b: Batch) -> Batch:
    return Batch(torch.cat([a.images, b.images]), torch.cat([a.caption_index, b.caption_index]))


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _random_crop(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    if min(height, width) < crop:
        raise ValueError(f"image of {width}x{height} is smaller than the {crop}px crop")
    top = rng.integers(0, height - crop + 1)
    left = rng.integers(0, width - crop + 1)
    out = image[top : top + crop, left : left + crop]
    return out[:, ::-1] if rng.random() < 0.5 else out
