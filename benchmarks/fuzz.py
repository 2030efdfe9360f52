"""The decoder fuzzer (tests/fuzzing.py) at scale: 10^5 mutated files by default.

    python benchmarks/fuzz.py                          # 100000 cases, shipped default model
    python benchmarks/fuzz.py --cases 2000 --minutes 5 --json fuzz.json

Seeds are genuine files of small crops of examples/horse.png (with and without keyword
slots and metadata). Workers decode each case twice with one torch thread; cases that
decode to pixels are decoded again by a worker with two threads. Stops early after
``--minutes`` and says how many cases ran.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from report import cpu_model, load_average, write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import fuzzing

import psic
from psic.codec.registry import default_model


def seeds(model: str) -> list[bytes]:
    photo = np.asarray(Image.open(ROOT / "examples" / "horse.png").convert("RGB"))
    crops = [photo[:64, :64], photo[:100, :140], photo[-130:, -70:]]
    files = [psic.encode(crop, model=model) for crop in crops]
    files.append(psic.encode(crops[1], model=model, keys=["a keyword"], metadata={"title": "horse"}))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--model", default=default_model().name, help="registered model name or weights file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    path = Path(args.model) if Path(args.model).exists() else _registered_path(args.model)
    workers = [fuzzing.Worker(path, threads) for threads in (1, 2)]
    start = time.monotonic()
    deadline = start + 60 * args.minutes if args.minutes else None
    try:
        summary = fuzzing.run(seeds(args.model), workers, args.cases, args.seed, deadline)
    finally:
        for worker in workers:
            worker.close()
    report = {
        "cpu": cpu_model(),
        "load_average": load_average(),
        "model": args.model,
        "cases_requested": args.cases,
        "cases": summary.cases,
        "typed_errors": dict(summary.typed_errors),
        "defined_decodes": summary.defined_decodes,
        "crashes": summary.crashes,
        "hangs": summary.hangs,
        "untyped_errors": summary.untyped_errors,
        "long_messages": summary.long_messages,
        "nondeterministic": summary.nondeterministic,
        "peak_rss_bytes": summary.peak_rss,
        "slowest_case": {"seconds": summary.slowest[0], "case": summary.slowest[1]},
        "minutes": (time.monotonic() - start) / 60,
        "failures": summary.failures[:50],
    }
    print_report(report)
    write_json(args.json, report)


def _registered_path(name: str) -> Path:
    from psic.codec.weights import resolve_model_path

    return Path(resolve_model_path(name, None)[0])


def print_report(report: dict) -> None:
    print(f"CPU: {report['cpu']}; load average {report['load_average']}; model {report['model']}\n")
    print("| cases | typed errors | defined decodes | crashes | hangs | untyped | long messages | nondeterministic |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {report['cases']} of {report['cases_requested']} | {sum(report['typed_errors'].values())} | "
        f"{report['defined_decodes']} | {report['crashes']} | {report['hangs']} | {report['untyped_errors']} | "
        f"{report['long_messages']} | {report['nondeterministic']} |"
    )
    errors = ", ".join(f"{name} {count}" for name, count in sorted(report["typed_errors"].items()))
    print(f"\nTyped errors: {errors}")
    print(f"Peak worker RSS: {report['peak_rss_bytes'] / 2**20:.0f} MiB; slowest case "
          f"{report['slowest_case']['seconds']:.2f} s ({report['slowest_case']['case']}); "
          f"{report['minutes']:.1f} minutes")
    for failure in report["failures"]:
        print(f"FAILURE {failure}")


if __name__ == "__main__":
    main()
