"""Rate cost of PSIC's integer hyper-synthesis against the float h_s, on real photos.

PSIC picks each y element's Gaussian scale-table index with an integer copy of h_s
(``model.integer_h_s``), so that every machine gets bit-identical indexes. This script
measures what that costs in rate: for each image it codes the same y symbols twice,
once with the integer indexes and once with the indexes of the float network
(``gaussian_conditional.build_indexes(h_s(z_hat))``, CompressAI's rule), and compares
the y string lengths. It also reports the share of y elements whose index differs.

    python benchmarks/fixed_point_rate.py --weights model.safetensors --images /work/shared/data/cid22/val
    python benchmarks/fixed_point_rate.py --checkpoint runs/base/last.pt --images DIR --limit 5
    python benchmarks/fixed_point_rate.py --random --images DIR --quick     # plumbing check only

With a weights file the float h_s is the file's (stored in fp16 and run in fp32), while
the integer h_s was frozen from the fp32 weights before saving; with ``--checkpoint``
both come from the same fp32 training weights, exported in memory by the library
(``psic.train.export.exported_model``: quantile fit, then the frozen tables).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

from models import psic_model
from report import cpu_model, write_json

RATE_COST_TARGET_PERCENT = 0.5
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"}
NOT_MEANINGFUL = (
    "WARNING: random weights -- this checks the plumbing only; the rate figures below are NOT a "
    "meaningful measure of the integer hyper-synthesis cost. Use --weights (or --checkpoint) with a trained model."
)


# --- machine ------------------------------------------------------------------------------


def machine_line() -> str:
    import torch

    return (
        f"{cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


# --- measurement --------------------------------------------------------------------------


def image_paths(folder: Path, limit: int | None) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return paths[:limit] if limit else paths


def measure(model, path: Path, cross_check: bool) -> dict:
    import torch

    from psic.codec import coding, entropy_coder
    from psic.imageio import load_image, pad_to_multiple

    rgb, _ = load_image(path)
    height, width = rgb.shape[:2]
    padded = pad_to_multiple(rgb, coding.DOWNSAMPLING)
    x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
    gc, eb = model.gaussian_conditional, model.entropy_bottleneck
    with torch.no_grad():
        y = model.g_a(x)
        z = model.h_a(torch.abs(y))
        medians = eb.quantiles[:, 0, 1]
        z_symbols = torch.round(z - medians.view(1, -1, 1, 1)).to(torch.int32)
        int_indexes = model.integer_h_s(z_symbols)
        float_scales = model.h_s(z_symbols.float() + medians.view(1, -1, 1, 1))
        float_indexes = gc.build_indexes(float_scales).to(torch.int32)
    y_symbols = torch.round(y).to(torch.int32)
    y_tables = entropy_coder.tables_of(gc)
    z_indexes = coding._channel_indexes(z.shape[1], tuple(z.shape[2:]))
    z_string = entropy_coder.encode(z_symbols, z_indexes, entropy_coder.tables_of(eb))
    y_int = entropy_coder.encode(y_symbols, int_indexes, y_tables)
    y_float = entropy_coder.encode(y_symbols, float_indexes, y_tables)

    if cross_check:  # the same strings as PSIC's own encoder and as CompressAI's coder
        streams = coding.compress(model, x)
        assert streams.y == y_int and streams.z == z_string, "coding.compress disagrees with this script"
        cai_float = compressai_conditional(gc).compress(y, float_indexes)[0]
        assert cai_float == y_float, "CompressAI's GaussianConditional.compress disagrees with entropy_coder.encode"

    table = gc.scale_table.to(torch.float32)
    y_hat = y_symbols.float()

    def model_bits(indexes) -> float:  # -log2 p under each element's table Gaussian (no 4-byte rANS words)
        with torch.no_grad():
            likelihood = gc.likelihood(y_hat, table[indexes.long()])
        return float(-torch.log2(likelihood.clamp_min(1e-9)).double().sum())

    bits_int, bits_float = model_bits(int_indexes), model_bits(float_indexes)
    differ = int_indexes != float_indexes
    step = (int_indexes.long() - float_indexes.long()).abs()
    return {
        "image": path.name,
        "width": width,
        "height": height,
        "padded": f"{padded.shape[1]}x{padded.shape[0]}",
        "y_elements": y_symbols.numel(),
        "z_bytes": len(z_string),
        "y_bytes_float": len(y_float),
        "y_bytes_integer": len(y_int),
        "delta_bytes": len(y_int) - len(y_float),
        "delta_percent": 100.0 * (len(y_int) - len(y_float)) / max(len(y_float), 1),
        "model_bits_float": bits_float,
        "model_bits_integer": bits_int,
        "model_bits_delta_percent": 100.0 * (bits_int - bits_float) / max(bits_float, 1e-9),
        "index_differs_percent": 100.0 * differ.float().mean().item(),
        "index_integer_higher_percent": 100.0 * (int_indexes > float_indexes).float().mean().item(),
        "index_max_step": int(step.max().item()),
        "bpp_integer": (len(z_string) + len(y_int)) * 8 / (width * height),
    }


def compressai_conditional(gc):
    """CompressAI's own GaussianConditional holding PSIC's tables (the state-dict names are the same)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        from compressai.entropy_models import GaussianConditional

    twin = GaussianConditional(None)
    for name, value in gc.state_dict().items():
        if name.startswith("_") or name == "scale_table":  # CompressAI creates these buffers empty
            twin.register_buffer(name, value.clone())
    twin.load_state_dict(gc.state_dict())
    return twin


def overall(rows: list[dict]) -> dict:
    y_float = sum(r["y_bytes_float"] for r in rows)
    y_int = sum(r["y_bytes_integer"] for r in rows)
    z_bytes = sum(r["z_bytes"] for r in rows)
    elements = sum(r["y_elements"] for r in rows)
    bits_float = sum(r["model_bits_float"] for r in rows)
    bits_int = sum(r["model_bits_integer"] for r in rows)
    return {
        "images": len(rows),
        "y_bytes_float": y_float,
        "y_bytes_integer": y_int,
        "z_bytes": z_bytes,
        "rate_cost_percent_of_y": 100.0 * (y_int - y_float) / max(y_float, 1),
        "rate_cost_percent_of_z_plus_y": 100.0 * (y_int - y_float) / max(y_float + z_bytes, 1),
        "model_bits_cost_percent": 100.0 * (bits_int - bits_float) / max(bits_float, 1e-9),
        "per_image_median_percent": statistics.median(r["delta_percent"] for r in rows),
        "per_image_max_percent": max(r["delta_percent"] for r in rows),
        "index_differs_percent": sum(r["index_differs_percent"] * r["y_elements"] for r in rows) / elements,
        "index_max_step": max(r["index_max_step"] for r in rows),
        "mean_bpp_integer": statistics.mean(r["bpp_integer"] for r in rows),
    }


# --- report -------------------------------------------------------------------------------


def print_report(report: dict) -> None:
    if report["random_weights"]:
        print(NOT_MEANINGFUL + "\n")
    print("## Integer vs float hyper-synthesis: y rate\n")
    print(f"- model: {report['model']}")
    print(f"- images: {report['images_dir']} ({report['overall']['images']} images)")
    print(f"- machine: {report['machine']}\n")
    print(
        "| image | size | y bytes (float idx) | y bytes (integer idx) | delta | delta % | model-bits delta % "
        "| idx differ % | max idx step |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["per_image"]:
        print(
            f"| {r['image']} | {r['width']}x{r['height']} | {r['y_bytes_float']:,} | {r['y_bytes_integer']:,} | "
            f"{r['delta_bytes']:+,} | {r['delta_percent']:+.3f} | {r['model_bits_delta_percent']:+.4f} | "
            f"{r['index_differs_percent']:.3f} | "
            f"{r['index_max_step']} |"
        )
    o = report["overall"]
    verdict = "met" if o["rate_cost_percent_of_y"] < RATE_COST_TARGET_PERCENT else "missed"
    print()
    print("## Overall\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| y bytes, float indexes | {o['y_bytes_float']:,} |")
    print(f"| y bytes, integer indexes | {o['y_bytes_integer']:,} |")
    print(
        f"| rate cost, % of y (target < {RATE_COST_TARGET_PERCENT}%) | {o['rate_cost_percent_of_y']:+.4f} ({verdict}) |"
    )
    print(f"| rate cost, % of z + y | {o['rate_cost_percent_of_z_plus_y']:+.4f} |")
    print(f"| model-bits cost, % of y (-log2 p, no rANS word rounding) | {o['model_bits_cost_percent']:+.4f} |")
    print(
        f"| per-image cost, median / max % | {o['per_image_median_percent']:+.4f} / {o['per_image_max_percent']:+.4f} |"
    )
    print(f"| y elements whose index differs | {o['index_differs_percent']:.4f} % |")
    print(f"| largest index difference | {o['index_max_step']} |")
    print(f"| mean bpp (integer path, z + y) | {o['mean_bpp_integer']:.4f} |")
    print()
    print(
        "Byte counts are the actual y strings (CompressAI's rANS writes 32-bit words, so they move in steps of "
        "4 bytes); model bits are -log2 of each symbol's likelihood under its table Gaussian, a finer view."
    )
    if report["random_weights"]:
        print("\n" + NOT_MEANINGFUL)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="trained PSIC weights file (.safetensors)")
    source.add_argument("--checkpoint", help="PSIC training checkpoint (last.pt); frozen in memory")
    source.add_argument("--random", action="store_true", help="random weights: checks the plumbing, NOT a rate figure")
    parser.add_argument("--images", required=True, help="folder of images, e.g. /work/shared/data/cid22/val")
    parser.add_argument("--limit", type=int, help="use only the first LIMIT images (sorted by name)")
    parser.add_argument("--quick", action="store_true", help="a short run: the first 2 images")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --random weights")
    parser.add_argument("--json", metavar="OUT", help="also write the per-image and overall figures to this JSON file")
    args = parser.parse_args(argv)
    if args.quick and args.limit is None:
        args.limit = 2
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(args.images)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    paths = image_paths(folder, args.limit)
    if not paths:
        print(f"error: no images in {folder}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    model, description = psic_model(args.weights, args.checkpoint, args.seed)
    if not model.is_frozen():
        print("error: the model's entropy tables are not built (freeze_entropy_models)", file=sys.stderr)
        return 2
    if args.random:
        print(NOT_MEANINGFUL, file=sys.stderr)
    rows = []
    start = time.perf_counter()
    for i, path in enumerate(paths):
        rows.append(measure(model, path, cross_check=(i == 0)))
        print(f"[{i + 1}/{len(paths)}] {path.name}: {rows[-1]['delta_percent']:+.3f} %", file=sys.stderr)
    report = {
        "model": description,
        "random_weights": bool(args.random),
        "images_dir": str(folder),
        "machine": machine_line(),
        "seconds": round(time.perf_counter() - start, 2),
        "target_rate_cost_percent": RATE_COST_TARGET_PERCENT,
        "per_image": rows,
        "overall": overall(rows),
    }
    print_report(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
