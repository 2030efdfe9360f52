"""Peak memory and seconds of encode and decode for big photos, and decode speed against an older PSIC.

    python benchmarks/big_photos.py                      # 1, 6, 24 and 45 MP with the default model
    python benchmarks/big_photos.py --sizes 1 6 --json big.json
    python benchmarks/big_photos.py --baseline /tmp/psic-before --sizes 0.4 --repeats 7

Every measurement runs in a fresh child process with one torch thread, so that its peak RSS
(ru_maxrss) is its own. With ``--baseline DIR`` (a checkout of an older PSIC) the decode of
each size is also timed with that code, rounds alternating between the two, and the report
gives the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from report import cpu_model, load_average, write_json

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
import psic
step, path, out, model = sys.argv[1:5]
psic.load_model(model)  # weights load is not part of the figure
start = time.perf_counter()
if step == "encode":
    data = psic.encode(np.load(path), model=model)
    open(out, "wb").write(data)
else:
    image = psic.decode(open(path, "rb").read(), model=model)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def photo(megapixels: float) -> np.ndarray:
    """A 3:2 photo-like image: smooth colour fields, edges and fine texture, made row band by row band."""
    width = round((megapixels * 1.5e6) ** 0.5 / 2) * 2
    height = round(megapixels * 1e6 / width)
    image = np.empty((height, width, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    xx = np.arange(width, dtype=np.float32)
    for top in range(0, height, 512):
        yy = np.arange(top, min(height, top + 512), dtype=np.float32)[:, None]
        base = np.stack(
            [
                120 + 80 * np.sin(xx / 211.0 + yy / 97.0),
                110 + 70 * np.cos(yy / 173.0) * np.sin(xx / 53.0),
                100 + 60 * np.sign(np.sin(xx / 301.0 + yy / 401.0)),
            ],
            axis=-1,
        )
        image[top : top + len(yy)] = np.clip(base + rng.normal(0, 7, base.shape), 0, 255).astype(np.uint8)
    return image


def measure(step: str, source: Path, out: Path, model: str, pythonpath: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(pythonpath), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(source), str(out), model],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode:
        return {"failed": done.returncode, "stderr": done.stderr[-500:]}
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 6, 24, 45], help="megapixels")
    parser.add_argument("--model", default="psic-q3")
    parser.add_argument("--baseline", type=Path, help="checkout of an older PSIC to time decodes against")
    parser.add_argument("--repeats", type=int, default=5, help="alternating decode rounds with --baseline")
    parser.add_argument("--json")
    args = parser.parse_args()
    report = {"cpu": cpu_model(), "threads": 1, "load_start": load_average(), "model": args.model, "sizes": []}
    print(f"CPU: {report['cpu']}, 1 torch thread, load average {report['load_start']}\n")
    print("| photo | pixels | file bytes | encode s | encode peak RSS | decode s | decode peak RSS |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.sizes:
            row = run_size(megapixels, Path(tmp), args)
            report["sizes"].append(row)
    report["load_end"] = load_average()
    write_json(args.json, report)


def run_size(megapixels: float, tmp: Path, args: argparse.Namespace) -> dict:
    image = photo(megapixels)
    source, encoded = tmp / "photo.npy", tmp / "photo.psic"
    np.save(source, image)
    del image
    encode = measure("encode", source, encoded, args.model, ROOT)
    decode = measure("decode", encoded, tmp / "unused", args.model, ROOT) if encoded.exists() else {"failed": 1}
    row = {"megapixels": megapixels, "shape": list(np.load(source, mmap_mode="r").shape), "encode": encode,
           "decode": decode, "file_bytes": encoded.stat().st_size if encoded.exists() else None}
    print(f"| {megapixels:g} MP | {row['shape'][1]}x{row['shape'][0]} | {row['file_bytes']} | "
          f"{_cell(encode, 'seconds')} | {_cell(encode, 'peak_rss')} | {_cell(decode, 'seconds')} | "
          f"{_cell(decode, 'peak_rss')} |", flush=True)
    if args.baseline and encoded.exists():
        row["baseline"] = compare(encoded, args)
    return row


def compare(encoded: Path, args: argparse.Namespace) -> dict:
    """Median decode seconds of this tree and of the baseline, rounds alternating."""
    times = {"current": [], "baseline": []}
    for _ in range(args.repeats):
        for name, path in (("current", ROOT), ("baseline", args.baseline)):
            result = measure("decode", encoded, encoded, args.model, path)
            times[name].append(result.get("seconds", float("nan")))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["current"] / medians["baseline"]
    print(f"  decode median {medians['current']:.3f} s, baseline {medians['baseline']:.3f} s: ratio {ratio:.3f}")
    return {"times": times, "medians": medians, "ratio": ratio}


def _cell(result: dict, key: str) -> str:
    if "failed" in result:
        return f"failed ({result['failed']})"
    value = result[key]
    return f"{value:.1f}" if key == "seconds" else f"{value / 2**30:.2f} GiB"


if __name__ == "__main__":
    main()
