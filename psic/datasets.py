"""Captioned photos (Flickr8k style) and caption-less image folders, for training and evaluation.

A captioned set is a folder with ``captions.tsv`` (``image<TAB>caption``, a header line)
and an ``images/`` folder. The validation split is a fixed function of the file names,
so every tool (surrogate training, PSIC training, evaluation) holds out the same images.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from psic.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


@dataclass(frozen=True)
class CaptionedImages:
    root: Path
    names: tuple[str, ...]
    captions: tuple[tuple[str, ...], ...]  # captions[i] belong to names[i]

    def image_path(self, i: int) -> Path:
        return self.root / "images" / self.names[i]


def read_captioned(root: str | Path) -> CaptionedImages:
    """Read ``captions.tsv`` with a real TSV parser (captions may hold commas and quotes)."""
    root = Path(root)
    table = root / "captions.tsv"
    grouped: dict[str, list[str]] = defaultdict(list)
    try:
        with open(table, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header != ["image", "caption"]:
                raise DataError(f"{table}: expected the header 'image<TAB>caption'")
            for row in reader:
                if len(row) == 2 and row[1].strip():
                    grouped[row[0]].append(row[1].strip())
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DataError(f"cannot read the captioned data set {table}: {reason}") from None
    if not grouped:
        raise DataError(f"{table} lists no captioned images")
    names = tuple(sorted(grouped))
    return CaptionedImages(root, names, tuple(tuple(grouped[n]) for n in names))


def split(data: CaptionedImages, val_count: int = 1000) -> tuple[CaptionedImages, CaptionedImages]:
    """(train, validation): validation is the ``val_count`` names with the smallest SHA-1."""
    order = sorted(range(len(data.names)), key=lambda i: hashlib.sha1(data.names[i].encode()).hexdigest())
    val = sorted(order[:val_count])
    train = sorted(order[val_count:])
    return _subset(data, train), _subset(data, val)


def _subset(data: CaptionedImages, indexes: list[int]) -> CaptionedImages:
    return CaptionedImages(data.root, tuple(data.names[i] for i in indexes), tuple(data.captions[i] for i in indexes))


def image_folder(root: str | Path) -> list[Path]:
    """Caption-less photos (for the rate-distortion part of training)."""
    try:
        photos = sorted(p for p in Path(root).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        raise DataError(f"cannot read the image folder {root}: {exc.strerror or exc}") from None
    if not photos:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root}")
    return photos


def load_square(paths: list[Path], size: int) -> np.ndarray:
    """Decode and resize every image once: [n, size, size, 3] uint8 (fits in memory for Flickr8k)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            out[i] = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    return out
