"""``psic encode/decode --out-dir``, ``psic protect`` and the checks made before any work."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import psic.api
from psic import errors
from psic.cli.main import cli


def run(*args, input: bytes | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("psic: error:")]


@pytest.fixture
def photos(tmp_path, photo):
    """A folder of three photos, one in a subfolder, and a file that is not an image."""
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(photo[:, ::-1]).save(folder / "b.jpg")
    Image.fromarray(photo[::-1]).save(folder / "trip" / "c.png")
    (folder / "notes.txt").write_text("not a photo")
    return folder


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model is loaded: the error under test must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the error was found")

    monkeypatch.setattr(psic.api, "_model", refuse)


def test_batch_encode_and_decode_mirror_the_folder(tmp_path, photos, tiny_model_path):
    result = run("encode", photos, "--out-dir", tmp_path / "enc", "-m", tiny_model_path, "-k", "word")
    assert result.exit_code == 0, result.stderr
    encoded = sorted(p.relative_to(tmp_path / "enc").as_posix() for p in (tmp_path / "enc").rglob("*.psic"))
    assert encoded == ["a.psic", "b.psic", "trip/c.psic"]
    assert "encoded 3 of 3 files" in result.stderr
    result = run("decode", tmp_path / "enc", "--out-dir", tmp_path / "dec", "-m", tiny_model_path, "--format", "webp")
    assert result.exit_code == 0, result.stderr
    decoded = sorted(p.relative_to(tmp_path / "dec").as_posix() for p in (tmp_path / "dec").rglob("*"))
    assert decoded == ["a.webp", "b.webp", "trip", "trip/c.webp"]
    assert result.stderr.count("WEBP is lossy") == 3  # one warning per protected lossy output


def test_batch_in_parallel_gives_the_same_files(tmp_path, photos, tiny_model_path):
    for workers, out in (("1", "one"), ("2", "two")):
        result = run("encode", photos, "-O", tmp_path / out, "-m", tiny_model_path, "-j", workers, "--quiet")
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
    for name in ("a.psic", "b.psic", "trip/c.psic"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_a_failing_file_is_counted_and_the_rest_is_done(tmp_path, photos, tiny_model_path):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = run("encode", photos, "-O", tmp_path / "enc", "-m", tiny_model_path)
    assert result.exit_code == errors.InputImageError.exit_code
    assert len(error_lines(result)) == 2  # the file's line and the summary
    assert "broken.png" in error_lines(result)[0] and "1 of 4 files failed" in error_lines(result)[1]
    assert len(list((tmp_path / "enc").rglob("*.psic"))) == 3
    assert not [p for p in (tmp_path / "enc").rglob(".*")]  # no half-written file


def test_failures_of_different_kinds_exit_11(tmp_path, photos, tiny_model_path):
    encoded = tmp_path / "enc"
    assert run("encode", photos, "-O", encoded, "-m", tiny_model_path, "-k", "word").exit_code == 0
    (encoded / "bad.psic").write_bytes(b"\x89PSIC\r\n\x1a\n\x01")
    result = run("decode", encoded, "-O", tmp_path / "dec", "-m", tiny_model_path, "-k", "wrong")
    assert result.exit_code == errors.BatchError.exit_code == 11
    assert len(error_lines(result)) == 5


def test_existing_outputs_stop_the_batch_before_any_work(tmp_path, photos, tiny_model_path, no_model):
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "a.psic").write_bytes(b"keep me")
    result = run("encode", photos, "-O", tmp_path / "enc", "-m", tiny_model_path)
    assert result.exit_code == 3 and "use -f/--force" in result.stderr
    assert (tmp_path / "enc" / "a.psic").read_bytes() == b"keep me"


def test_two_inputs_on_one_output_are_refused(tmp_path, photo, tiny_model_path, no_model):
    Image.fromarray(photo).save(tmp_path / "x.png")
    Image.fromarray(photo).save(tmp_path / "x.jpg")
    result = run("encode", tmp_path / "x.png", tmp_path / "x.jpg", "-O", tmp_path / "out", "-m", tiny_model_path)
    assert result.exit_code == 2 and "would both be written" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["encode", "{missing}", "-o", "{out}.psic"], 3),
        (["encode", "{photo}", "{photo}", "-o", "{out}.psic"], 2),
        (["encode", "{photo}", "-o", "{out}.png"], 2),  # .psic bytes in a .png
        (["encode", "{photo}"], 2),  # neither -o nor --out-dir
        (["encode", "{photo}", "-o", "{out}.psic", "-m", "no-such-model"], 6),
        (["encode", "{photo}", "-o", "{out}.psic", "--device", "tpu"], 2),
        (["encode", "{photo}", "-o", "{out}.psic", "-k", ""], 7),
        (["encode", "{photo}", "-o", "{out}.psic", "--key-file", "{missing}"], 3),
        (["encode", "{photo}", "-O", "{photo}"], 3),  # out-dir is a file
        (["decode", "{psic}", "-o", "{out}.png", "--format", "jpeg"], 2),
        (["decode", "{psic}", "-o", "{out}.png", "-k", "one", "-k", "two"], 2),
        (["protect", "{photo}", "-o", "{out}.png", "-k", "word"], 2),  # a keyword without --psic
        (["protect", "{photo}", "-o", "{out}.png", "--psic", "{out}.jpg"], 2),
        (["protect", "{photo}", "-o", "{out}.xyz"], 2),
    ],
)
def test_mistakes_exit_with_their_code_before_any_work(tmp_path, photo, args, code, no_model):
    Image.fromarray(photo).save(tmp_path / "photo.png")
    (tmp_path / "file.psic").write_bytes(b"never read")
    names = {"missing": tmp_path / "missing.png", "out": tmp_path / "out", "photo": tmp_path / "photo.png",
             "psic": tmp_path / "file.psic"}
    result = run(*[a.format(**names) for a in args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.psic", "photo.png"]


def test_protect_writes_the_protected_image_and_the_owners_file(tmp_path, photo, tiny_model_path):
    Image.fromarray(photo).save(tmp_path / "photo.png")
    out, owner = tmp_path / "public.png", tmp_path / "owner.psic"
    result = run("protect", tmp_path / "photo.png", "-o", out, "--psic", owner, "-k", "word", "-m", tiny_model_path)
    assert result.exit_code == 0, result.stderr
    protected = run("decode", owner, "-o", "-", "-m", tiny_model_path)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(io.BytesIO(protected.stdout_bytes))))
    assert run("decode", owner, "-o", tmp_path / "full.png", "-k", "word", "-m", tiny_model_path).exit_code == 0


def test_protect_to_jpeg_warns_and_quiet_silences_it(tmp_path, photo, tiny_model_path):
    Image.fromarray(photo).save(tmp_path / "photo.png")
    result = run("protect", tmp_path / "photo.png", "-o", tmp_path / "p.jpg", "-m", tiny_model_path)
    assert result.exit_code == 0 and "JPEG is lossy" in result.stderr
    assert Image.open(tmp_path / "p.jpg").format == "JPEG"
    result = run("protect", tmp_path / "photo.png", "-o", tmp_path / "q.jpg", "-m", tiny_model_path, "--quiet")
    assert result.exit_code == 0 and result.stderr == ""


def test_cli_keeps_icc_and_exif_without_gps(tmp_path, photo, tiny_model_path):
    from test_photo import GPS, exif_with_gps, srgb_profile

    Image.fromarray(photo).save(tmp_path / "camera.jpg", icc_profile=srgb_profile(), exif=exif_with_gps())
    assert run("encode", tmp_path / "camera.jpg", "-o", tmp_path / "c.psic", "-m", tiny_model_path).exit_code == 0
    assert run("decode", tmp_path / "c.psic", "-o", tmp_path / "c.png", "-m", tiny_model_path).exit_code == 0
    with Image.open(tmp_path / "c.png") as png:
        assert png.info["icc_profile"] == srgb_profile()
        exif = png.getexif()
        assert exif[0x010F] == "PhotoMaker" and GPS not in exif
