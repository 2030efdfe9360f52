"""User mistakes in ``psic train`` and ``psic eval`` exit with their typed codes, not "internal error"."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from psic import errors
from psic.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "internal error" not in result.stderr and "Traceback" not in result.output
    (line,) = [text for text in result.stderr.splitlines() if text.strip()]
    return line


def test_missing_captions_table_is_a_data_error(tmp_path):
    result = run("train", "surrogate", "--data", tmp_path, "-o", tmp_path / "s.safetensors")
    assert "captions.tsv" in one_error_line(result, errors.DataError.exit_code)


def test_empty_caption_table_is_a_data_error(tmp_path):
    (tmp_path / "captions.tsv").write_text("image\tcaption\n", encoding="utf-8")
    result = run("train", "surrogate", "--data", tmp_path, "-o", tmp_path / "s.safetensors")
    assert "no captioned images" in one_error_line(result, errors.DataError.exit_code)


def test_empty_image_folder_is_a_data_error(tmp_path):
    result = run("eval", "rd", "--images", tmp_path)
    assert "no images" in one_error_line(result, 12)


def test_missing_optional_dependency_names_the_extra(tmp_path, captioned_dir):
    code = (
        "import sys\nsys.modules['open_clip'] = None  # as if open_clip_torch were not installed\n"
        "from psic.cli.main import main\n"
        f"sys.exit(main(['train', 'surrogate', '--data', {str(captioned_dir)!r}, '-o', {str(tmp_path / 's')!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == errors.MissingExtraError.exit_code, result.stderr
    assert result.stderr.strip().splitlines() == [
        "psic: error: this command needs the optional package 'open_clip': pip install 'psic[train]'"
    ]


@pytest.mark.parametrize("code", [12, 13])
def test_new_codes_are_in_the_help_table(code):
    assert f"  {code} " in run("--help").output


def test_a_retune_of_a_chain_without_weights_is_a_usage_error(tmp_path):
    plan = {"model": "m", "weights": str(tmp_path / "m.safetensors"), "start": str(tmp_path / "start.safetensors"),
            "stage1": "stage1.json", "stage2": "stage2.json"}
    (tmp_path / "chain.json").write_text(json.dumps(plan), encoding="utf-8")
    result = run("train", "segment", "--chain", tmp_path / "chain.json", "--out", tmp_path / "seg", "--minutes", 1,
                 "--captioned", tmp_path, "--stage2-only", "--note", "a retune")
    assert "does not exist yet" in one_error_line(result, errors.UsageError.exit_code)


@pytest.mark.parametrize("kinds", [("--stage2-only", "--encoder-only"), ("--stage1-only", "--stage2-only")])
def test_a_segment_of_two_kinds_at_once_is_a_usage_error(tmp_path, kinds):
    result = run("train", "segment", "--out", tmp_path / "seg", "--minutes", 1, "--captioned", tmp_path, *kinds)
    assert "give one of" in one_error_line(result, errors.UsageError.exit_code)
    assert not (tmp_path / "seg").exists()
