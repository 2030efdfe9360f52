"""What a ``psic`` command costs beyond its work: start-up, and a shell loop against one batch.

Times, in fresh processes (wall seconds, median after one untimed warm-up run):

* ``python -c pass`` (the interpreter), ``psic --help`` and ``psic info FILE`` (no torch);
* coding ``--photos`` synthetic photos of ``--size`` three ways: in-process through the
  API (model loaded once, as a library user or a server pays it), a shell loop of one
  ``psic encode IN -o OUT`` per photo (what a script without batch support pays), and one
  ``psic encode DIR --out-dir OUT`` batch. Target: loop <= 1.5x batch per photo.

    python benchmarks/startup.py                 # 4 photos of 768x512, 3 runs each
    python benchmarks/startup.py --quick         # 2 photos, 1 run
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from models import summary, synthetic_image
from report import machine_info, write_json

LOOP_RATIO_TARGET = 1.5


def psic_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m psic``."""
    script = Path(sys.executable).parent / "psic"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "psic"]


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return time.perf_counter() - start


def repeat(measure, runs: int, reset=lambda: None) -> dict:
    """One untimed warm-up, then ``runs`` timed runs; ``reset`` runs before each (untimed)."""
    values = []
    for index in range(runs + 1):
        reset()
        elapsed = measure()
        if index:
            values.append(elapsed)
    return summary(values)


def write_photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    from PIL import Image

    folder.mkdir()
    paths = [folder / f"photo{i}.png" for i in range(count)]
    for i, path in enumerate(paths):
        Image.fromarray(synthetic_image(width, height, seed=i)).save(path)
    return paths


def in_process(paths: list[Path], model: str | None) -> float:
    """Seconds for a fresh interpreter to import psic, load the model once and encode every photo."""
    code = (
        "import sys, psic\n"
        f"for p in sys.argv[1:]: psic.encode(p, model={model!r})\n"
    )
    return wall([sys.executable, "-c", code, *map(str, paths)])


def measure(args: argparse.Namespace) -> dict:
    psic = psic_command()
    model = ["-m", args.model] if args.model else []
    with tempfile.TemporaryDirectory(prefix="psic-startup-") as tmp:
        root = Path(tmp)
        paths = write_photos(root / "photos", args.photos, args.width, args.height)
        out = root / "out"

        def clear() -> None:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()

        def loop() -> float:
            return sum(wall([*psic, "encode", str(p), "-o", str(out / f"{p.stem}.psic"), *model]) for p in paths)

        def batch() -> float:
            return wall([*psic, "encode", str(root / "photos"), "--out-dir", str(out), "--quiet", *model])

        info_file = out / "photo0.psic"
        clear()
        wall([*psic, "encode", str(paths[0]), "-o", str(info_file), *model])
        figures = {
            "python -c pass": repeat(lambda: wall([sys.executable, "-c", "pass"]), args.runs),
            "psic --help": repeat(lambda: wall([*psic, "--help"]), args.runs),
            "psic info FILE": repeat(lambda: wall([*psic, "info", str(info_file)]), args.runs),
            "in-process API, all photos": repeat(lambda: in_process(paths, args.model), args.runs),
            "shell loop of psic encode, all photos": repeat(loop, args.runs, clear),
            "psic encode --out-dir, all photos": repeat(batch, args.runs, clear),
        }
    return figures


def print_report(report: dict) -> None:
    cfg, figures = report["config"], report["seconds"]
    print(f"## CLI start-up and per-photo cost ({cfg['photos']} photos of {cfg['width']}x{cfg['height']})\n")
    print(f"Machine: {report['machine']['cpu_model']}, {report['machine']['usable_cores']} usable cores, "
          f"torch {report['machine']['torch']}; wall seconds, median of {cfg['runs']} after a warm-up.\n")
    print("| command | median s | min s | per photo s |")
    print("|---|---:|---:|---:|")
    for label, s in figures.items():
        per_photo = f"{s['median'] / cfg['photos']:.2f}" if "photos" in label else ""
        print(f"| {label} | {s['median']:.2f} | {s['min']:.2f} | {per_photo} |")
    ratio = report["loop_over_batch"]
    verdict = "met" if ratio <= LOOP_RATIO_TARGET else "missed"
    print(f"\nShell loop / batch: {ratio:.2f}x (target <= {LOOP_RATIO_TARGET}x: {verdict}); "
          f"shell loop / in-process: {report['loop_over_in_process']:.2f}x.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=4, help="photos to code (default 4)")
    parser.add_argument("--size", default="768x512", help="WIDTHxHEIGHT of each photo (default 768x512)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command (default 3)")
    parser.add_argument("--model", help="model name or weights file (default: the installed default model)")
    parser.add_argument("--quick", action="store_true", help="2 photos, 1 timed run")
    parser.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.runs = 2, 1
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    if args.photos < 1 or args.runs < 1:
        parser.error("--photos and --runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = measure(args)
    loop = figures["shell loop of psic encode, all photos"]["median"]
    report = {
        "machine": machine_info(),
        "config": {"photos": args.photos, "width": args.width, "height": args.height, "runs": args.runs,
                   "model": args.model or "(default)"},
        "seconds": figures,
        "loop_over_batch": loop / figures["psic encode --out-dir, all photos"]["median"],
        "loop_over_in_process": loop / figures["in-process API, all photos"]["median"],
        "target_loop_over_batch_max": LOOP_RATIO_TARGET,
    }
    print_report(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
