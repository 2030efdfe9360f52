"""Side-by-side crops for docs/models.md: original, PSIC full, PSIC protected, WebP at the same size.

For each quality level, the whole image is coded (a real .psic file, no keywords), both
modes are decoded, and WebP is coded at the largest quality whose file is no larger; the
four views of one crop box are put side by side, 2x enlarged (nearest neighbour, so
artefacts stay visible), with a caption line under each.

    python benchmarks/crops.py --image DATA/cid22/val/X.png --box 100 150 228 278 -q 1 -q 3 -q 6 --out docs/images
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import psic
from psic import imageio
from psic.eval.rate_distortion import bits_per_pixel, decode_baseline, encode_baseline, match_bpp, psnr

SCALE = 2
CAPTION = 16


def panel(pixels: np.ndarray, box: tuple[int, int, int, int], caption: str) -> Image.Image:
    left, top, right, bottom = box
    crop = Image.fromarray(pixels[top:bottom, left:right]).resize(((right - left) * SCALE, (bottom - top) * SCALE), Image.Resampling.NEAREST)
    out = Image.new("RGB", (crop.width, crop.height + CAPTION), "white")
    out.paste(crop, (0, 0))
    ImageDraw.Draw(out).text((4, crop.height + 2), caption, fill="black")
    return out


def level_strip(original: np.ndarray, box: tuple[int, int, int, int], model: str | None, quality: int | None) -> Image.Image:
    data = psic.encode(original, model=model, quality=quality, device="cpu")
    bpp = bits_per_pixel(len(data), original)
    full = np.asarray(psic.decode(data, mode="full", model=model, device="cpu"))
    protected = np.asarray(psic.decode(data, mode="protected", model=model, device="cpu"))
    webp_quality = match_bpp(original, "WEBP", bpp)["quality"]
    webp_data = encode_baseline(original, "WEBP", webp_quality)
    webp = decode_baseline(webp_data)
    views = [
        (original, "original"),
        (full, f"PSIC full {bpp:.3f} bpp {psnr(original, full):.1f} dB"),
        (protected, f"PSIC protected {psnr(original, protected):.1f} dB"),
        (webp, f"WebP {bits_per_pixel(len(webp_data), original):.3f} bpp {psnr(original, webp):.1f} dB"),
    ]
    panels = [panel(pixels, box, caption) for pixels, caption in views]
    strip = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), panels[0].height), "white")
    x = 0
    for p in panels:
        strip.paste(p, (x, 0))
        x += p.width + 4
    return strip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True)
    parser.add_argument("--box", type=int, nargs=4, metavar=("LEFT", "TOP", "RIGHT", "BOTTOM"), required=True)
    parser.add_argument("-m", "--model")
    parser.add_argument("-q", "--quality", type=int, action="append", help="level (repeatable); default: the model's default")
    parser.add_argument("--out", required=True, help="folder for crops-q<N>.png")
    args = parser.parse_args()
    original, _ = imageio.load_image(args.image)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for quality in args.quality or [None]:
        name = out / f"crops-q{quality or 'default'}.png"
        level_strip(original, tuple(args.box), args.model, quality).save(name, optimize=True)
        print(name)


if __name__ == "__main__":
    main()
