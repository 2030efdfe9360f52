"""Record what the shipped default model decodes, per mode, from a fixed photo crop.

    python tests/data/make_mode_digests.py

Run it when the default model's weights change (a new training segment is adopted); it
adds an entry keyed by the weights' sha256 to mode-digests.json and never edits another.
test_shipped.py then checks that each mode still decodes to exactly these pixels, so a
swapped or broken mode fails a test.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DIGESTS = HERE / "mode-digests.json"
CROP = (200, 120, 328, 248)  # 128 x 128 of the horse's head in examples/horse.png


def fixed_image() -> np.ndarray:
    with Image.open(HERE.parent.parent / "examples" / "horse.png") as image:
        return np.asarray(image.convert("RGB").crop(CROP))


def mode_digests(quality: int | None) -> dict:
    """sha256 of each mode's decoded pixels, and both PSNRs, at one thread (bit-stable on a machine)."""
    import torch

    import psic

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        original = fixed_image()
        data = psic.encode(original, quality=quality, device="cpu")
        out = {}
        for mode in ("protected", "full"):
            pixels = np.asarray(psic.decode(data, mode=mode, device="cpu"))
            mse = np.mean((pixels.astype(np.float64) - original) ** 2)
            out[mode] = {"sha256": hashlib.sha256(pixels.tobytes()).hexdigest(), "psnr": round(10 * np.log10(255**2 / mse), 2)}
        return out
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    from psic.codec.registry import default_model, default_quality

    entry = default_model()
    recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    if entry.sha256 in recorded:
        print(f"{entry.name} {entry.sha256[:8]} already recorded")
        return
    quality = default_quality() if entry.levels else None
    recorded[entry.sha256] = {"model": entry.name, "quality": quality, **mode_digests(quality)}
    DIGESTS.write_text(json.dumps(recorded, indent=2) + "\n")
    print(json.dumps(recorded[entry.sha256]))


if __name__ == "__main__":
    main()
