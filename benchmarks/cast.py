"""How much of the protection is a colour cast: PSNR and attack success with and without it.

The Flickr8k validation split (or its first --limit images) is coded once at one quality,
as ``psic eval privacy`` does. The protected decode is then compared as it is and with the
part of its difference to the full decode that is coarser than a g x g grid taken away
(``psic.train.robustness.without_cast``; g = 1 is the mean colour). That view needs the
full decode, so no platform can apply it; it shows where an attack lives. If most of the
attack success goes with the cast, the protection is a tint, which a colour-normalizing
platform or crawler could undo, and a tint is also what costs the protected decode its PSNR.

    python benchmarks/cast.py --data DATA/flickr8k -q 3 --grid 1 --grid 4 -t psic-surrogate --json cast.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from report import machine_info, write_json

from psic.cli.eval_commands import _target_spec
from psic.eval import privacy
from psic.eval.rate_distortion import psnr
from psic.train.robustness import without_cast


def uncast(protected: np.ndarray, full: np.ndarray, grid: int) -> np.ndarray:
    """The training view of one uint8 image pair, rounded back to what a saved image would hold."""
    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]

    view = without_cast(tensor(protected), tensor(full), grid)
    return view[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def variant(base: privacy.Galleries, protected: list[np.ndarray], jpeg_quality: int) -> privacy.Galleries:
    """The galleries with another protected decode, and its JPEG, 0.5x and white-balanced versions."""
    images = dict(base.images)
    versions = [privacy.platform_versions(p, jpeg_quality) for p in protected]
    images.update({name: [v[name] for v in versions] for name in versions[0]})
    return privacy.Galleries(images, base.file_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Flickr8k folder (captions.tsv + images/)")
    parser.add_argument("-q", "--quality", type=int, default=3)
    parser.add_argument("--model", default=None, help="model name or weights file (default: the default model)")
    parser.add_argument("--grid", type=int, action="append", help="cast grid sizes to remove (default: 1 and 4)")
    parser.add_argument(
        "-t", "--target", action="append", help="target VLP, NAME or NAME=WEIGHTS (default psic-surrogate)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N validation images")
    parser.add_argument("--jpeg-quality", type=int, default=75)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    grids = args.grid or [1, 4]
    if min(grids) < 1:
        parser.error("--grid must be >= 1")
    targets = [privacy._load_target(_target_spec(t), "cpu") for t in (args.target or ["psic-surrogate"])]

    val = privacy.validation_set(args.data, limit=args.limit)
    print(f"coding {len(val.names)} images at quality {args.quality}", file=sys.stderr)
    paths = [val.image_path(i) for i in range(len(val.names))]
    base = privacy.build_galleries(args.model, paths, args.jpeg_quality, "cpu", args.quality)
    originals, full = base.images["original"], base.images["full"]
    views = {"as decoded": base}
    for grid in grids:
        protected = [uncast(p, f, grid) for p, f in zip(base.images["protected"], full)]
        views[f"without cast, grid {grid}"] = variant(base, protected, args.jpeg_quality)

    report = {"machine": machine_info(), "quality": args.quality, "images": len(val.names), "views": {}}
    print(
        f"| protected decode | PSNR protected (full {np.mean([psnr(o, f) for o, f in zip(originals, full)]):.2f} dB) "
        "| target | ASR vs full | + JPEG | + 0.5x | both grey world |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, galleries in views.items():
        result = privacy.evaluate_retrieval(
            args.model,
            targets,
            args.data,
            limit=args.limit,
            jpeg_quality=args.jpeg_quality,
            galleries=galleries,
            quality=args.quality,
        )
        report["views"][name] = result
        protected_psnr = np.mean([psnr(o, p) for o, p in zip(originals, galleries.images["protected"])])
        for target in result["targets"]:
            cells = [
                f"{target[k]['i2t']:.1f} / {target[k]['t2i']:.1f}"
                for k in ("asr", "asr_jpeg", "asr_half", "asr_balanced")
            ]
            print(f"| {name} | {protected_psnr:.2f} dB | {target['target']} | " + " | ".join(cells) + " |")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
