"""Encode time and picture per encoder effort: what ``--effort`` buys and what it costs.

Each image is encoded into a real .psic file at every effort and quality asked for, and
both modes are decoded; the figures are means over the images.

    python benchmarks/effort.py --images DATA/cid22/val --limit 3 -q 3 --json effort.json
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from report import machine_info, write_json

import psic
from psic import imageio
from psic.codec.effort import EFFORT_ITERATIONS, MAX_EFFORT
from psic.datasets import image_folder
from psic.eval.rate_distortion import bits_per_pixel, psnr


def measure(original: np.ndarray, model: str | None, quality: int, effort: int) -> dict:
    start = time.perf_counter()
    data = psic.encode(original, model=model, quality=quality, effort=effort, device="cpu")
    seconds = time.perf_counter() - start
    full = np.asarray(psic.decode(data, mode="full", model=model, device="cpu"))
    protected = np.asarray(psic.decode(data, mode="protected", model=model, device="cpu"))
    return {
        "encode_s": seconds,
        "bpp": bits_per_pixel(len(data), original),
        "psnr_full": psnr(original, full),
        "psnr_protected": psnr(original, protected),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="folder of test images")
    parser.add_argument("--limit", type=int, default=3, help="first N images of the folder (default 3)")
    parser.add_argument("-q", "--quality", type=int, action="append", help="quality level (repeatable; default 3)")
    parser.add_argument("-e", "--effort", type=int, action="append", help=f"effort 0-{MAX_EFFORT} (repeatable; default all)")
    parser.add_argument("-m", "--model", help="model name or weights file (default: the shipped default)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = image_folder(args.images)[: args.limit]
    originals = [imageio.load_image(path)[0] for path in paths]
    rows = []
    for quality in args.quality or [3]:
        for effort in args.effort or range(MAX_EFFORT + 1):
            print(f"q{quality} effort {effort} ...", file=sys.stderr)
            figures = [measure(original, args.model, quality, effort) for original in originals]
            rows.append({"quality": quality, "effort": effort, "steps": EFFORT_ITERATIONS[effort],
                         **{key: float(np.mean([f[key] for f in figures])) for key in figures[0]}})
    machine = machine_info()
    print(f"{len(paths)} images of {args.images} (mean {np.mean([o.shape[0] * o.shape[1] for o in originals]) / 1e6:.2f} MP); "
          f"{machine['cpu_model']}, {machine['torch_threads']} torch threads\n")
    print("| quality | effort | steps | encode s | bpp | full dB | protected dB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['quality']} | {r['effort']} | {r['steps']} | {r['encode_s']:.1f} | {r['bpp']:.4f} | "
              f"{r['psnr_full']:.2f} | {r['psnr_protected']:.2f} |")
    write_json(args.json, {"machine": machine, "images": [str(p) for p in paths], "rows": rows})


if __name__ == "__main__":
    main()
