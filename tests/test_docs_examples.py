"""The examples of README.md and docs/cli.md run as written (with the shipped default model)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def blocks(document: str, language: str, heading: str) -> list[str]:
    """The ``language`` code blocks of the section of ``document`` under ``heading``."""
    text = (ROOT / document).read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("document", "heading"), [("README.md", "## Python API"), ("docs/cli.md", "## Pillow plugin")])
def test_python_examples_run(workdir, document, heading):
    (code,) = blocks(document, "python", heading)
    exec(compile(code, f"{document} {heading}", "exec"), {})  # noqa: S102 - the documented example itself
    assert (workdir / "horse.psic").is_file()


def test_everyday_shell_examples_run(workdir):
    (script,) = blocks("README.md", "sh", "## Everyday use")
    for line in script.strip().splitlines():
        command = line.split("#", 1)[0].split()
        assert command[0] == "psic"
        done = subprocess.run([sys.executable, "-m", "psic", *command[1:]], capture_output=True, text=True, check=False)
        assert done.returncode == 0, (line, done.stderr)
    assert (workdir / "horse-public.png").is_file()
    assert (workdir / "psic-out" / "horse.psic").is_file()
    assert (workdir / "public" / "horse.webp").is_file()
