"""What both benchmark scripts print about the machine and how they save a report."""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path

from psic.machine import cpu_model, load_average


def write_json(path: str | None, report: dict) -> None:
    """Save every figure of a report when ``--json`` asked for it."""
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def machine_info() -> dict:
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            import compressai

        compressai_version = compressai.__version__
    except Exception:  # noqa: BLE001 - informational only
        compressai_version = "n/a"
    import psic

    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "compressai": compressai_version,
        "psic": getattr(psic, "__version__", "n/a"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15": load_average(),
    }
