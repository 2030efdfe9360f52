"""Tiled transforms: bit-identical scale indexes, seamless pixels, every position covered once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_tiny_model

from psic.codec import coding, tiling


@pytest.fixture(scope="module", params=[0, 8], ids=["one-rate", "gain"])
def model(request):
    return build_tiny_model(levels=request.param)


def quality_of(model) -> int | None:
    return 3 if model.arch.variable_rate else None


def photo(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([np.sin(xx / 37.0) * 90 + 120, np.cos(yy / 23.0) * 80 + 110, (xx + yy) % 256], axis=-1)
    noise = np.random.default_rng(0).normal(0, 6, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("length,tile,margin", [(1, 4, 2), (10, 4, 2), (64, 64, 2), (130, 64, 2)])
def test_tile_cores_cover_the_grid_once(length, tile, margin):
    spans = tiling.spans(length, tile, margin)
    assert [i for span in spans for i in range(span.start, span.stop)] == list(range(length))
    for span in spans:
        assert 0 <= span.lo <= span.start < span.stop <= span.hi <= length
        assert span.start - span.lo == min(margin, span.start) and span.hi - span.stop == min(margin, length - span.stop)


def test_tiled_integer_hyper_synthesis_is_bit_identical(model, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    z_symbols = torch.randint(-6, 7, (1, model.arch.N, 9, 13), generator=generator, dtype=torch.int32)
    monkeypatch.setattr(tiling, "HYPER_TILE", 2)
    assert torch.equal(tiling.scale_indexes(model, z_symbols), model.integer_h_s(z_symbols))


def test_tiled_analysis_matches_a_whole_pass(model, monkeypatch):
    image = photo(300, 200)
    monkeypatch.setattr(tiling, "LATENT_TILE", 3)
    monkeypatch.setattr(tiling, "HYPER_TILE", 1)
    level = coding.level_tensor(model, quality_of(model))
    padded = torch.from_numpy(np.pad(image, ((0, 20), (0, 56), (0, 0)), mode="edge")).permute(2, 0, 1)[None] / 255.0
    y = tiling.analysis(model, tiling.pixel_tiles(image, torch.device("cpu")), (20, 16), level)
    with torch.no_grad():
        whole = model.analysis(padded.float(), level)
        assert torch.allclose(y, whole, atol=1e-4)
        assert torch.allclose(tiling.hyper_analysis(model, y), model.h_a(whole.abs()), atol=1e-4)


def test_tiled_decode_of_a_1024_photo_is_seamless(model, monkeypatch):
    """Tiles of 256 pixels against one pass over 1024x1024: at most one level apart anywhere."""
    streams = coding.compress(model, photo(1024, 1024), quality_of(model))
    latent = coding.decode_latent(model, streams, 1024, 1024)
    whole = coding.synthesize(model, latent, 1.0, 1024, 1024, quality_of(model))
    monkeypatch.setattr(tiling, "LATENT_TILE", 16)
    tiled = coding.render(model, latent, 1.0, 1024, 1024, quality_of(model))
    difference = np.abs(tiled.astype(int) - tiling.to_uint8(whole[0]).astype(int))
    assert tiled.shape == (1024, 1024, 3)
    assert difference.max() <= 1


def test_encoding_an_array_equals_encoding_its_padded_tensor(model):
    image = photo(100, 150)
    padded = torch.from_numpy(np.pad(image, ((0, 28), (0, 42), (0, 0)), mode="edge")).permute(2, 0, 1)[None]
    quality = quality_of(model)
    assert coding.compress(model, image, quality) == coding.compress(model, padded.float() / 255.0, quality)


def test_crafted_latents_still_give_defined_pixels():
    pixels = tiling.to_uint8(torch.tensor([[[float("nan"), float("inf")]], [[-float("inf"), 0.5]], [[2.0, -1.0]]]))
    assert pixels.tolist() == [[[0, 0, 255], [255, 128, 0]]]
