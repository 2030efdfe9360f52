"""What both benchmark scripts print about the machine and how they save a report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from psic.machine import cpu_model, load_average  # noqa: F401  (re-exported for the benchmark scripts)


def write_json(path: str | None, report: dict) -> None:
    """Save every figure of a report when ``--json`` asked for it."""
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
