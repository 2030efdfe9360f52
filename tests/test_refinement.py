"""Encoder effort: each image's latent refined at encode time; decoder and format unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import build_tiny_model
from PIL import Image

import psic
from psic.cli.main import cli
from psic.codec import coding, refinement
from psic.codec.network import QUALITY_LAMBDAS
from psic.errors import UsageError

QUALITY = 8  # the tiny random network codes almost nothing below; here distortion has room to fall


def rd_cost(data: bytes, photo: np.ndarray, model: str) -> float:
    """What the encoder minimizes, measured on the real file: coded bits per pixel plus
    the level's lambda x 255^2 x MSE of the full decode (8-bit, as a user gets it)."""
    info = psic.inspect(data)
    decoded = np.asarray(psic.decode(data, model=model, mode="full"), dtype=np.float64)
    mse = np.mean((decoded - photo.astype(np.float64)) ** 2)
    return (info.z_bytes + info.y_bytes) * 8 / (photo.shape[0] * photo.shape[1]) + QUALITY_LAMBDAS[QUALITY - 1] * mse


def test_effort_lowers_the_rate_distortion_cost_of_the_real_file(photo, tiny_gain_model_path):
    model = str(tiny_gain_model_path)
    plain = psic.encode(photo, model=model, quality=QUALITY)
    refined = psic.encode(photo, model=model, quality=QUALITY, effort=2)
    assert refined != plain
    assert rd_cost(refined, photo, model) < rd_cost(plain, photo, model)


def test_refinement_in_tiles_keeps_every_tile_consistent(photo, tiny_gain_model_path, monkeypatch):
    """A latent grid of many refinement tiles (each refined against its refined neighbours)
    still lowers the cost of the whole file."""
    model = str(tiny_gain_model_path)
    plain = psic.encode(photo, model=model, quality=QUALITY)
    monkeypatch.setattr(refinement, "REFINE_TILE", 2)  # 70x90 pads to an 8x8 latent grid: 16 tiles
    refined = psic.encode(photo, model=model, quality=QUALITY, effort=1)
    assert rd_cost(refined, photo, model) < rd_cost(plain, photo, model)


def test_refinement_leaves_the_network_untouched(photo):
    """Even a network whose parameters require gradients (a model being trained) gets none."""
    net = build_tiny_model(levels=8)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    assert all(p.requires_grad for p in net.parameters())
    coding.compress(net, photo, QUALITY, effort=1)
    for name, p in net.named_parameters():
        assert p.grad is None, name
        assert torch.equal(p.detach(), before[name]), name


def test_effort_with_a_registered_one_rate_model_fails_before_any_work(tmp_path, photo):
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    result = CliRunner().invoke(cli, ["encode", str(source), "-o", str(tmp_path / "x.psic"), "-m", "psic-q3", "-e", "1"])
    assert result.exit_code == 2 and "quality levels" in result.stderr
    assert not (tmp_path / "x.psic").exists()


@pytest.mark.parametrize("effort", [-1, 4, True, 1.5])
def test_effort_outside_0_to_3_is_a_usage_error(photo, tiny_gain_model_path, effort):
    with pytest.raises(UsageError, match="effort"):
        psic.encode(photo, model=str(tiny_gain_model_path), quality=QUALITY, effort=effort)


def test_effort_needs_a_model_with_quality_levels(photo, tiny_model_path):
    with pytest.raises(UsageError, match="quality levels"):
        psic.encode(photo, model=str(tiny_model_path), effort=1)


def test_cli_effort_option(tmp_path, photo, tiny_gain_model_path):
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    model = str(tiny_gain_model_path)
    runner = CliRunner()
    out = tmp_path / "photo.psic"
    result = runner.invoke(cli, ["encode", str(source), "-o", str(out), "-m", model, "-q", str(QUALITY), "-e", "1"])
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == psic.encode(photo, model=model, quality=QUALITY, effort=1)
    result = runner.invoke(cli, ["encode", str(source), "-o", str(tmp_path / "x.psic"), "-m", model, "-e", "9"])
    assert result.exit_code == 2 and "effort" in result.stderr
    assert not (tmp_path / "x.psic").exists()
