"""Record what the shipped default model decodes, per mode, from a fixed photo crop.

    python tests/data/make_mode_psnr.py

Run it when the default model's weights change (a new training segment is adopted); it
writes mode-psnr.json with one entry, keyed by the shipped weights' sha256 (the figures of
weights no longer shipped are never read).
test_shipped.py then checks that each mode still decodes to this PSNR (to 0.05 dB), so a
swapped or broken mode fails a test. The PSNR, not a pixel digest: g_s runs in float, and
another CPU (AVX2 against AVX-512) rounds some pixels the other way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RECORDED = HERE / "mode-psnr.json"
CROP = (200, 120, 328, 248)  # 128 x 128 of the horse's head in examples/horse.png


def fixed_image() -> np.ndarray:
    with Image.open(HERE.parent.parent / "examples" / "horse.png") as image:
        return np.asarray(image.convert("RGB").crop(CROP))


def mode_psnr(quality: int | None) -> dict:
    """Each mode's PSNR against the original crop."""
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
            out[mode] = {"psnr": round(10 * np.log10(255**2 / mse), 2)}
        return out
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    from psic.codec.registry import default_model, default_quality

    entry = default_model()
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    if entry.sha256 in recorded:
        print(f"{entry.name} {entry.sha256[:8]} already recorded")
        return
    quality = default_quality() if entry.levels else None
    recorded = {entry.sha256: {"model": entry.name, "quality": quality, **mode_psnr(quality)}}
    RECORDED.write_text(json.dumps(recorded, indent=2) + "\n")
    print(json.dumps(recorded[entry.sha256]))


if __name__ == "__main__":
    main()
