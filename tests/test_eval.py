"""Evaluation: PSNR, baseline bisection, PSIC rate-distortion, retrieval/ASR and the ``psic eval`` commands."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import psic
from psic.cli.main import cli
from psic.eval import privacy
from psic.eval import rate_distortion as rd


@pytest.fixture
def image_dir(tmp_path, photo):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(np.ascontiguousarray(photo[::-1, ::-1])).save(folder / "b.png")
    return folder


def test_psnr_of_known_arrays():
    zeros = np.zeros((2, 2, 3), dtype=np.uint8)
    assert rd.psnr(zeros, zeros + 5) == pytest.approx(10 * math.log10(255**2 / 25))
    one_off = zeros.copy()
    one_off[0, 0, 0] = 255  # MSE = 255^2 / 12
    assert rd.psnr(zeros, one_off) == pytest.approx(10 * math.log10(12))
    assert rd.psnr(one_off, one_off) == math.inf
    with pytest.raises(ValueError):
        rd.psnr(zeros, zeros[:1])


@pytest.mark.parametrize("codec", rd.BASELINES)
def test_bisection_meets_the_target_with_the_largest_quality(photo, codec):
    lowest = rd.bits_per_pixel(len(rd.encode_baseline(photo, codec, 1)), photo)
    highest = rd.bits_per_pixel(len(rd.encode_baseline(photo, codec, 100)), photo)
    qualities = []
    for target in np.linspace(lowest, highest, 5):
        row = rd.match_bpp(photo, codec, float(target))
        assert row["bpp"] <= target
        if row["quality"] < 100:  # the next quality was tried and is too large
            assert rd.bits_per_pixel(len(rd.encode_baseline(photo, codec, row["quality"] + 1)), photo) > target
        qualities.append(row["quality"])
    assert qualities == sorted(qualities) and qualities[-1] == 100
    unreachable = rd.match_bpp(photo, codec, lowest / 2)
    assert unreachable["quality"] == 1 and unreachable["bpp"] > unreachable["target_bpp"]
    assert math.isfinite(unreachable["psnr"])


def test_evaluate_psic_uses_real_file_bytes(image_dir, tiny_model_path):
    paths = sorted(image_dir.iterdir())
    rows = rd.evaluate_psic(tiny_model_path, paths)
    assert [row["image"] for row in rows] == ["a.png", "b.png"]
    for path, row in zip(paths, rows):
        data = psic.encode(path, model=tiny_model_path, device="cpu")
        assert row["bytes"] == len(data)
        assert row["bpp"] == pytest.approx(len(data) * 8 / (70 * 90))
        for key in ("psnr_full", "psnr_protected", "psnr_full_vs_protected"):
            assert math.isfinite(row[key]) and row[key] > 0

    matched = rd.match_psic(paths, rows, codecs=("JPEG",))
    summary = rd.summarize(rows, matched, {"JPEG": [(0.0, 20.0), (100.0, 40.0)]})
    assert summary["images"] == 2
    assert summary["bpp"] == pytest.approx(np.mean([row["bpp"] for row in rows]))
    jpeg = summary["baselines"]["JPEG"]
    assert jpeg["psnr_interp"] == pytest.approx(20.0 + summary["bpp"] / 5)
    assert jpeg["over_target"] == sum(r["bpp"] > r["target_bpp"] for r in matched["JPEG"])


def test_fixed_targets_and_curves(image_dir):
    paths = sorted(image_dir.iterdir())
    results = rd.evaluate_baselines(paths, [0.5, 2.0])
    assert set(results) == set(rd.BASELINES)
    assert all(len(rows) == 4 for rows in results.values())
    curve = rd.codec_curve(paths, "WEBP", (10, 90))
    assert len(curve) == 2 and curve[0][0] < curve[1][0]
    assert rd.interpolate_psnr(curve, curve[0][0]) == pytest.approx(curve[0][1])
    assert math.isnan(rd.interpolate_psnr(curve, curve[1][0] * 2))


def test_grey_world_removes_a_colour_cast_and_keeps_neutral_images():
    grey = np.full((8, 8, 3), 120, dtype=np.uint8)
    assert np.array_equal(privacy.grey_world(grey), grey)
    photo = np.random.default_rng(0).integers(60, 200, size=(16, 16, 3)).astype(np.float32)
    photo *= photo.reshape(-1, 3).mean(axis=0).mean() / photo.reshape(-1, 3).mean(axis=0)  # neutral on average
    tinted = np.clip(photo * np.array([1.15, 0.9, 1.05]), 0, 255).round().astype(np.uint8)
    balanced = privacy.grey_world(tinted).astype(np.float32)
    means, tinted_means = balanced.reshape(-1, 3).mean(axis=0), tinted.reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) < 1.0 < np.ptp(tinted_means) - 10
    brightness = tinted_means.mean() / photo.reshape(-1, 3).mean()  # the overall level is kept, only the tint goes
    assert np.abs(balanced - photo * brightness).mean() < 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero channel mean
        assert not privacy.grey_world(np.zeros((4, 4, 3), dtype=np.uint8)).any()
        no_blue = np.stack([np.full((4, 4), 90), np.full((4, 4), 60), np.zeros((4, 4))], axis=-1).astype(np.uint8)
        assert privacy.grey_world(no_blue)[..., 2].max() == 0


@pytest.fixture(scope="module")
def galleries(captioned_dir, tiny_model_path):
    val = privacy.validation_set(captioned_dir, val_count=4)
    return privacy.build_galleries(tiny_model_path, [val.image_path(i) for i in range(4)])


def test_the_balanced_galleries_are_both_decodes_white_balanced(galleries):
    for mode in ("full", "protected"):
        for image, balanced in zip(galleries.images[mode], galleries.images[f"{mode}_balanced"]):
            assert np.array_equal(balanced, privacy.grey_world(image))
    assert ("asr_balanced", "full_balanced", "protected_balanced") in privacy.ATTACKS


def _check_report(report: dict, targets: int) -> None:
    assert report["images"] == 4 and report["captions"] == 8
    assert math.isfinite(report["bpp"]) and math.isfinite(report["psnr_full"])
    assert len(report["targets"]) == targets
    for target in report["targets"]:
        assert set(target["recall"]) == set(privacy.GALLERIES)
        for recall in target["recall"].values():
            assert set(recall) == {f"{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)}
            assert all(0 <= value <= 100 for value in recall.values())
        attacks = [name for name, _, _ in privacy.ATTACKS]
        assert {"asr", "asr_jpeg", "asr_half", "asr_balanced", "asr_vs_original", "asr_vs_webp"} <= set(attacks)
        for key in (*attacks, "full_r1_pct_of_original"):
            assert set(target[key]) == {"i2t", "t2i"}
        for key in attacks:
            assert all(v is None or math.isnan(v) or 0 <= v <= 100 for v in target[key].values())
            for direction, counts in target["asr_counts"][key].items():
                assert 0 <= counts["fooled"] <= counts["of"]
                if counts["of"]:
                    assert target[key][direction] == pytest.approx(100 * counts["fooled"] / counts["of"])
                    low, high = counts["ci95"]
                    assert low <= target[key][direction] <= high


def test_retrieval_with_a_built_model(captioned_dir, tiny_model_path, tiny_vlp):
    report = privacy.evaluate_retrieval(tiny_model_path, [tiny_vlp], captioned_dir, val_count=4)
    _check_report(report, targets=1)
    assert report["targets"][0]["target"] == "tiny"


def test_retrieval_resolves_specs_and_reuses_galleries(captioned_dir, galleries, tiny_vlp, monkeypatch):
    calls = []

    def fake_load_vlp(spec, *, device, weights=None):
        calls.append((spec, weights))
        return tiny_vlp

    monkeypatch.setattr("psic.vlp.load_vlp", fake_load_vlp)
    monkeypatch.setattr(privacy, "build_galleries", None)  # the galleries given must be used
    report = privacy.evaluate_retrieval(
        None, ["some:spec", ("psic-surrogate", "w.safetensors")], captioned_dir, val_count=4, galleries=galleries
    )
    _check_report(report, targets=2)
    assert calls == [("some:spec", None), ("psic-surrogate", "w.safetensors")]
    with pytest.raises(ValueError):
        privacy.evaluate_retrieval(None, [tiny_vlp], captioned_dir, val_count=4, limit=2, galleries=galleries)


def test_cli_eval_rd_prints_a_table_and_writes_json(image_dir, tiny_model_path, tmp_path):
    out = tmp_path / "rd.json"
    args = ["eval", "rd", "-m", tiny_model_path, "--images", image_dir, "--device", "cpu", "--json", out]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    for label in ("full", "protected", "JPEG", "WebP", "AVIF"):
        assert label in result.stdout
    report = json.loads(out.read_text(), parse_constant=pytest.fail)
    (level,) = report["levels"]  # a one-rate model has one point
    assert level["quality"] is None and level["summary"]["images"] == 2 and len(level["psic"]) == 2
    assert set(level["baselines"]) == set(report["curves"]) == set(rd.BASELINES)
    again = CliRunner().invoke(cli, [str(a) for a in args])
    assert again.exit_code == 3 and "exists" in again.stderr


def test_cli_eval_rd_of_a_ladder_reports_bd_rates_and_plots(image_dir, tiny_gain_model_path, tmp_path):
    out, plot = tmp_path / "rd.json", tmp_path / "rd.png"
    args = ["eval", "rd", "-m", tiny_gain_model_path, "-q", "1", "-q", "8", "--images", image_dir,
            "--device", "cpu", "--json", out, "--plot", plot]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "BD-rate of PSIC full" in result.stdout
    report = json.loads(out.read_text())
    assert [level["quality"] for level in report["levels"]] == [1, 8]
    assert report["levels"][0]["summary"]["bpp"] < report["levels"][1]["summary"]["bpp"]
    assert set(report["bd_rate"]) == {"full", "protected"}
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 300


def test_cli_eval_privacy(captioned_dir, tiny_model_path, tiny_vlp, monkeypatch, tmp_path):
    monkeypatch.setattr("psic.vlp.load_vlp", lambda spec, *, device, weights=None: tiny_vlp)
    args = ["eval", "privacy", "-m", tiny_model_path, "--data", captioned_dir, "-t", "x=w.safetensors"]
    args += ["--val-count", "4", "--device", "cpu", "--json", "-"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "ASR full->protected" in result.stderr and "both grey world" in result.stderr
    report = json.loads(result.stdout, parse_constant=lambda c: None)
    _check_report(report, targets=1)
    i2t, t2i = (report["targets"][0]["asr_counts"]["asr"][d] for d in ("i2t", "t2i"))
    assert f"rests on {i2t['fooled']} of {i2t['of']} images, {t2i['fooled']} of {t2i['of']} captions" in result.stderr
    empty = CliRunner().invoke(cli, ["eval", "privacy", "--data", str(tmp_path), "-t", "x"])
    assert empty.exit_code == 12 and "captioned data set" in empty.stderr


def test_an_asr_without_pairs_reads_as_not_available_not_nan():
    from psic.cli.eval_commands import _interval, _pair

    nan = float("nan")
    assert _interval([nan, nan]) == "n/a (no pairs)"
    assert _interval([75.04, 94.82]) == "75.0-94.8"
    assert _pair(nan, 50.0) == "  n/a /  50.0"


def test_eval_help_does_not_import_torch():
    script = (
        "import sys\nfrom psic.cli.main import main\ncode = main(['eval', '--help'])\n"
        "assert 'torch' not in sys.modules\nsys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_bd_rate_of_a_curve_shifted_to_half_the_rate_is_minus_50_percent():
    from psic.eval.bd_rate import bd_rate

    anchor = [(0.2, 28.0), (0.4, 31.0), (0.8, 34.0), (1.6, 37.0)]
    half = [(r / 2, p) for r, p in anchor]
    assert bd_rate(anchor, half) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(half, anchor) == pytest.approx(100.0, abs=1e-6)
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_is_nan_without_overlapping_quality():
    from psic.eval.bd_rate import bd_rate

    assert math.isnan(bd_rate([(0.1, 20.0), (0.2, 22.0)], [(1.0, 35.0), (2.0, 38.0)]))


def test_a_bd_rate_without_overlap_is_reported_in_words_not_as_nan():
    from psic.eval.bd_rate import format_bd_rate

    assert format_bd_rate(float("nan")) == "no overlap"
    assert format_bd_rate(-12.345) == "-12.3 %"
    assert format_bd_rate(42.0) == "+42.0 %"


def test_cli_eval_rd_refuses_a_quality_the_model_lacks_before_any_work(image_dir, tiny_gain_model_path):
    args = ["eval", "rd", "-m", tiny_gain_model_path, "-q", "9", "--images", image_dir, "--device", "cpu"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 2 and "no quality 9" in result.stderr
