"""The ``psic`` command line: round trips, modes and keywords, I/O rules, exit codes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from psic import errors
from psic.cli import exitcodes
from psic.cli.main import cli
from psic.format import SIGNATURE

KEYWORD = "correct horse battery staple"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def run(*args: str, input: bytes | None = None, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_one_line_error(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    err = lines(result.stderr)
    assert len(err) == 1, result.stderr
    assert err[0].startswith("psic: error: ")
    assert "Traceback" not in result.output
    return err[0]


def pixels(path_or_bytes) -> np.ndarray:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted atomic write could leave behind."""
    return [p.name for p in directory.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


@pytest.fixture
def image_file(tmp_path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture(scope="session")
def encoded(tmp_path_factory, tiny_model_path) -> dict[str, Path]:
    """One file with a keyword and one without, encoded once through the CLI."""
    directory = tmp_path_factory.mktemp("encoded")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:70, 0:90]
    base = np.stack([xx * 2.5, yy * 3.0, (xx + yy) * 1.4], axis=-1)
    image = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    source = directory / "photo.png"
    Image.fromarray(image).save(source)
    files = {"locked": directory / "locked.psic", "open": directory / "open.psic"}
    result = run(
        "encode",
        source,
        "-o",
        files["locked"],
        "--key",
        KEYWORD,
        "--model",
        tiny_model_path,
        "--device",
        "cpu",
        "--meta",
        "author=test",
    )
    assert result.exit_code == 0, result.stderr
    result = run("encode", source, "-o", files["open"], "--model", tiny_model_path, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    return files


def decode(psic_file, out, model, *extra: str):
    return run("decode", psic_file, "-o", out, "--model", model, "--device", "cpu", *extra)


# --- basics --------------------------------------------------------------------------------


def test_version():
    from psic import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"psic {__version__}"


def test_help_lists_every_exit_code_of_the_error_classes():
    result = run("--help")
    assert result.exit_code == 0
    codes = {cls.exit_code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.PsicError)}
    codes |= {0, 1, 2, 130}
    listed = {int(m) for m in re.findall(r"^\s+(\d+)\s{2,}", result.stdout, re.MULTILINE)}
    assert codes <= listed, codes - listed
    for command in ("encode", "decode", "info", "models"):
        assert command in result.stdout


def test_docs_list_every_exit_code():
    text = DOCS.read_text(encoding="utf-8")
    documented = {int(m) for m in re.findall(r"^\|\s*`?(\d+)`?\s*\|", text, re.MULTILINE)}
    assert {code for code, _ in exitcodes.exit_codes()} <= documented


@pytest.mark.parametrize("args", [["--help"], ["models"], ["info", "{file}"], ["info", "--json", "{file}"]])
def test_light_commands_do_not_import_torch(args, encoded):
    args = [a.format(file=encoded["locked"]) for a in args]
    script = (
        "import sys\n"
        "from psic.cli.main import main\n"
        f"code = main({args!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_python_dash_m_exit_codes_and_one_line_errors(tmp_path):
    corrupt = tmp_path / "corrupt.psic"
    corrupt.write_bytes(b"this is not a psic file at all")
    for path, code in ((tmp_path / "missing.psic", 3), (corrupt, 4)):
        proc = subprocess.run(
            [sys.executable, "-m", "psic", "info", str(path)], check=False, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, proc.stderr
        assert proc.stdout == ""
        assert len(lines(proc.stderr)) == 1 and proc.stderr.startswith("psic: error: "), proc.stderr


# --- encode / decode -----------------------------------------------------------------------


def test_round_trip_to_png(tmp_path, image_file, tiny_model_path, photo):
    psic_file = tmp_path / "photo.psic"
    result = run("encode", image_file, "-o", psic_file, "--model", tiny_model_path, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert psic_file.read_bytes().startswith(SIGNATURE)
    out = tmp_path / "decoded.png"
    result = decode(psic_file, out, tiny_model_path)
    assert result.exit_code == 0, result.stderr
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (photo.shape[1], photo.shape[0])
    assert leftovers(tmp_path) == []


def test_protected_and_full_with_key_differ(tmp_path, encoded, tiny_model_path):
    protected, full = tmp_path / "protected.png", tmp_path / "full.png"
    assert decode(encoded["locked"], protected, tiny_model_path).exit_code == 0
    result = decode(encoded["locked"], full, tiny_model_path, "--key", KEYWORD)
    assert result.exit_code == 0, result.stderr
    a, b = pixels(protected), pixels(full)
    assert a.shape == b.shape
    assert np.abs(a - b).max() > 0
    # --mode protected with the right key gives the protected image again
    again = tmp_path / "again.png"
    assert decode(encoded["locked"], again, tiny_model_path, "--key", KEYWORD, "--mode", "protected").exit_code == 0
    assert np.array_equal(pixels(again), a)


def test_wrong_key_exits_7_and_writes_nothing(tmp_path, encoded, tiny_model_path):
    out = tmp_path / "out.png"
    wrong = "not the keyword at all"
    result = decode(encoded["locked"], out, tiny_model_path, "--key", wrong)
    assert_one_line_error(result, 7)
    assert wrong not in result.output
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_full_mode_without_key_on_locked_file_exits_7(tmp_path, encoded, tiny_model_path):
    out = tmp_path / "out.png"
    assert_one_line_error(decode(encoded["locked"], out, tiny_model_path, "--mode", "full"), 7)
    assert not out.exists()


def test_file_without_keys_decodes_full_on_request(tmp_path, encoded, tiny_model_path):
    protected, full = tmp_path / "protected.png", tmp_path / "full.png"
    assert decode(encoded["open"], protected, tiny_model_path).exit_code == 0
    result = decode(encoded["open"], full, tiny_model_path, "--mode", "full")
    assert result.exit_code == 0, result.stderr
    assert np.abs(pixels(protected) - pixels(full)).max() > 0


def test_key_on_file_without_keys_exits_7(tmp_path, encoded, tiny_model_path):
    assert_one_line_error(decode(encoded["open"], tmp_path / "o.png", tiny_model_path, "--key", KEYWORD), 7)


def test_key_file(tmp_path, encoded, tiny_model_path, image_file):
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEYWORD + "\n", encoding="utf-8")
    via_option, via_file = tmp_path / "a.png", tmp_path / "b.png"
    assert decode(encoded["locked"], via_option, tiny_model_path, "--key", KEYWORD).exit_code == 0
    result = decode(encoded["locked"], via_file, tiny_model_path, "--key-file", key_file)
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(via_option), pixels(via_file))
    # a key file at encode time works too, and the file then refuses a full decode without it
    locked = tmp_path / "locked.psic"
    result = run("encode", image_file, "-o", locked, "--key-file", key_file, "--model", tiny_model_path)
    assert result.exit_code == 0, result.stderr
    assert decode(locked, tmp_path / "c.png", tiny_model_path, "--key-file", key_file).exit_code == 0
    assert_one_line_error(decode(locked, tmp_path / "d.png", tiny_model_path, "--mode", "full"), 7)


def test_two_different_keywords_on_decode_are_explained(tmp_path, encoded, tiny_model_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text("another word", encoding="utf-8")
    result = decode(encoded["locked"], tmp_path / "o.png", tiny_model_path, "--key", KEYWORD, "--key-file", key_file)
    message = assert_one_line_error(result, 2)
    assert "2 different keywords" in message
    assert KEYWORD not in result.output and not (tmp_path / "o.png").exists()


def test_the_same_keyword_twice_on_decode_is_one_keyword(tmp_path, encoded, tiny_model_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEYWORD, encoding="utf-8")
    result = decode(encoded["locked"], tmp_path / "o.png", tiny_model_path, "--key", KEYWORD, "--key-file", key_file)
    assert result.exit_code == 0, result.stderr


def test_missing_key_file_exits_3(tmp_path, encoded, tiny_model_path):
    result = decode(encoded["locked"], tmp_path / "o.png", tiny_model_path, "--key-file", tmp_path / "nope.txt")
    assert_one_line_error(result, 3)


def test_existing_output_needs_force(tmp_path, encoded, tiny_model_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = decode(encoded["open"], out, tiny_model_path)
    message = assert_one_line_error(result, 3)
    assert "--force" in message
    assert out.read_bytes() == b"precious"
    result = decode(encoded["open"], out, tiny_model_path, "-f")
    assert result.exit_code == 0, result.stderr
    assert pixels(out).shape == (70, 90, 3)
    assert leftovers(tmp_path) == []


def test_encode_refuses_existing_output(tmp_path, image_file, tiny_model_path):
    out = tmp_path / "out.psic"
    out.write_bytes(b"precious")
    assert_one_line_error(run("encode", image_file, "-o", out, "--model", tiny_model_path), 3)
    assert out.read_bytes() == b"precious"
    assert run("encode", image_file, "-o", out, "--model", tiny_model_path, "--force").exit_code == 0
    assert out.read_bytes() != b"precious"


def test_stdin_and_stdout(tmp_path, image_file, tiny_model_path, photo):
    result = run("encode", "-", "-o", "-", "--model", tiny_model_path, "--device", "cpu", input=image_file.read_bytes())
    assert result.exit_code == 0, result.stderr
    psic_bytes = result.stdout_bytes
    assert psic_bytes.startswith(SIGNATURE)
    info = run("info", "-", "--json", input=psic_bytes)
    assert info.exit_code == 0, info.stderr
    assert json.loads(info.stdout)["width"] == photo.shape[1]
    result = run(
        "decode", "-", "-o", "-", "--model", tiny_model_path, "--device", "cpu", "--mode", "full", input=psic_bytes
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.startswith(b"\x89PNG\r\n\x1a\n")
    assert pixels(result.stdout_bytes).shape == photo.shape


def test_bad_image_on_stdin_exits_9_without_temporary_path(tiny_model_path):
    result = run("encode", "-", "-o", "-", "--model", tiny_model_path, input=b"not an image")
    message = assert_one_line_error(result, 9)
    assert "image data" in message and "psic-stdin-" not in message
    assert result.stdout_bytes == b""


def test_decode_format_from_extension_and_lossy_warning(tmp_path, encoded, tiny_model_path):
    out = tmp_path / "out.jpg"
    result = decode(encoded["open"], out, tiny_model_path)
    assert result.exit_code == 0, result.stderr
    with Image.open(out) as im:
        assert im.format == "JPEG"
    assert len(lines(result.stderr)) == 1 and "warning" in result.stderr and "lossy" in result.stderr
    # no warning for a lossless format, nor for the full image
    assert decode(encoded["open"], tmp_path / "out.png", tiny_model_path).stderr == ""
    assert decode(encoded["open"], tmp_path / "full.jpg", tiny_model_path, "--mode", "full").stderr == ""


def test_unknown_extension_is_a_usage_error(tmp_path, encoded, tiny_model_path):
    out = tmp_path / "out.nosuchformat"
    assert_one_line_error(decode(encoded["open"], out, tiny_model_path), 2)
    assert not out.exists()


def test_failed_image_write_leaves_no_files(tmp_path, encoded, tiny_model_path):
    # XBM takes only 1-bit images: Pillow fails after the temporary file was created
    out = tmp_path / "out.xbm"
    result = decode(encoded["open"], out, tiny_model_path)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_metadata_option(tmp_path, image_file, tiny_model_path):
    out = tmp_path / "m.psic"
    result = run("encode", image_file, "-o", out, "--model", tiny_model_path, "--meta", "title=a=b", "--meta", "x=")
    assert result.exit_code == 0, result.stderr
    assert json.loads(run("info", out, "--json").stdout)["metadata"] == {"title": "a=b", "x": ""}
    for bad in ("novalue", "=v", "k" * 200 + "=v"):
        result = run("encode", image_file, "-o", tmp_path / "bad.psic", "--model", tiny_model_path, "--meta", bad)
        assert result.exit_code == 2, (bad, result.stderr)
    assert not (tmp_path / "bad.psic").exists()


# --- info / models ---------------------------------------------------------------------------


def test_info_human(encoded):
    result = run("info", encoded["locked"])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "90 x 70" in text
    assert "tiny-test" in text
    assert re.search(r"keyword slots\s+1\b", text)
    assert "author = test" in text
    assert KEYWORD not in text


def test_info_json(encoded):
    result = run("info", "--json", encoded["locked"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["width"] == 90 and data["height"] == 70
    assert data["key_slots"] == 1
    assert data["model"] == "tiny-test"
    assert data["metadata"] == {"author": "test"}
    assert data["file_bytes"] == encoded["locked"].stat().st_size
    assert json.loads(run("info", "--json", encoded["open"]).stdout)["key_slots"] == 0


def test_info_escapes_control_characters(tmp_path, image_file, tiny_model_path):
    out = tmp_path / "evil.psic"
    assert run("encode", image_file, "-o", out, "--model", tiny_model_path, "--meta", "note=\x1b[2Jboo").exit_code == 0
    result = run("info", out)
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "\\x1b[2Jboo" in result.stdout


def test_models_empty_registry(monkeypatch):
    monkeypatch.setattr("psic.api.list_models", lambda: ())
    result = run("models")
    assert result.exit_code == 0
    assert "no models are installed" in result.stdout
    result = run("models", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_models_listing(monkeypatch):
    from psic.codec.registry import ModelEntry

    entry = ModelEntry(
        name="psic-test-q3",
        architecture="psic-ch",
        N=128,
        M=192,
        cond_hidden=64,
        quality=3,
        weights="q3.safetensors",
        sha256="ab" * 32,
        description="test model",
    )
    monkeypatch.setattr("psic.api.list_models", lambda: (entry,))
    result = run("models")
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("psic-test-q3"))
    assert "128/192" in row and "abababab" in row and "test model" in row and " 3 " in row
    data = json.loads(run("models", "--json").stdout)
    assert data[0]["name"] == "psic-test-q3" and data[0]["sha256"] == "ab" * 32


# --- errors and exit codes ---------------------------------------------------------------------


def test_corrupt_input_exits_4(tmp_path, encoded, tiny_model_path):
    corrupt = tmp_path / "corrupt.psic"
    data = bytearray(encoded["open"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    assert_one_line_error(decode(corrupt, tmp_path / "o.png", tiny_model_path), 4)
    assert_one_line_error(run("info", corrupt), 4)
    assert not (tmp_path / "o.png").exists()


def test_missing_input_exits_3(tmp_path, tiny_model_path):
    assert_one_line_error(run("info", tmp_path / "missing.psic"), 3)
    assert_one_line_error(decode(tmp_path / "missing.psic", tmp_path / "o.png", tiny_model_path), 3)
    assert_one_line_error(run("encode", tmp_path / "missing.png", "-o", tmp_path / "o.psic"), 3)
    assert not (tmp_path / "o.psic").exists()


def test_bad_image_exits_9(tmp_path, tiny_model_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert_one_line_error(run("encode", bad, "-o", tmp_path / "o.psic", "--model", tiny_model_path), 9)
    assert not (tmp_path / "o.psic").exists()


def test_missing_model_exits_6(tmp_path, image_file, encoded):
    assert_one_line_error(run("encode", image_file, "-o", tmp_path / "o.psic", "--model", "no-such-model"), 6)
    # tiny-test is not registered, so decoding without --model cannot find it
    assert_one_line_error(run("decode", encoded["open"], "-o", tmp_path / "o.png"), 6)


def test_cuda_without_cuda_exits_10(tmp_path, image_file, tiny_model_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "o.psic"
    assert_one_line_error(run("encode", image_file, "-o", out, "--model", tiny_model_path, "--device", "cuda"), 10)
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path, image_file):
    assert run("encode", image_file).exit_code == 2  # no -o
    assert run("decode", "x.psic", "-o", "x.png", "--mode", "sideways").exit_code == 2
    assert run("nosuchcommand").exit_code == 2


def test_unexpected_exception_is_one_line_internal_error(monkeypatch, encoded):
    def boom(data):
        raise RuntimeError("something broke\nin two lines")

    monkeypatch.setattr("psic.api.inspect", boom)
    result = run("info", encoded["open"])
    assert result.exit_code == 1
    assert lines(result.stderr) == ["psic: internal error: RuntimeError: something broke in two lines"]
    result = run("info", encoded["open"], env={"PSIC_DEBUG": "1"})
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_keyboard_interrupt_exits_130(monkeypatch, encoded):
    def interrupted(data):
        raise KeyboardInterrupt

    monkeypatch.setattr("psic.api.inspect", interrupted)
    result = run("info", encoded["open"])
    assert result.exit_code == 130
    assert "Traceback" not in result.output


def test_main_returns_status_instead_of_exiting(tmp_path):
    from psic.cli.main import main

    assert main(["--version"]) == 0
    assert main(["info", str(tmp_path / "missing.psic")]) == 3
    assert main(["--no-such-option"]) == 2


def test_output_in_missing_directory_exits_3_before_work(tmp_path, image_file, tiny_model_path):
    out = tmp_path / "no" / "such" / "dir" / "o.psic"
    assert_one_line_error(run("encode", image_file, "-o", out, "--model", tiny_model_path), 3)


def test_new_output_gets_normal_permissions(tmp_path, encoded, tiny_model_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    out = tmp_path / "o.png"
    assert decode(encoded["open"], out, tiny_model_path).exit_code == 0
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_existing_output_is_refused_before_any_work(monkeypatch, tmp_path, image_file):
    def must_not_run(*args, **kwargs):
        raise AssertionError("encode ran although the output exists")

    monkeypatch.setattr("psic.api.encode", must_not_run)
    out = tmp_path / "out.psic"
    out.write_bytes(b"precious")
    assert_one_line_error(run("encode", image_file, "-o", out), 3)
    assert out.read_bytes() == b"precious"


def test_output_created_during_the_work_is_not_clobbered(monkeypatch, tmp_path, image_file):
    out = tmp_path / "out.psic"

    def concurrent_writer(*args, **kwargs):
        out.write_bytes(b"written meanwhile")
        return SIGNATURE + b"fake"

    monkeypatch.setattr("psic.api.encode", concurrent_writer)
    assert_one_line_error(run("encode", image_file, "-o", out), 3)
    assert out.read_bytes() == b"written meanwhile"
    assert leftovers(tmp_path) == []
    # with --force the result replaces it
    assert run("encode", image_file, "-o", out, "-f").exit_code == 0
    assert out.read_bytes() == SIGNATURE + b"fake"
