"""The models inside the package: present, intact, loadable, and the default works end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import psic
from psic.codec.registry import default_model, registered_models, weights_dir
from psic.codec.weights import file_sha256

MODELS = registered_models()
SURROGATES = json.loads((weights_dir() / "surrogates.json").read_text())


def test_registry_names_are_unique_and_default_is_registered():
    names = [m.name for m in MODELS]
    assert len(names) == len(set(names))
    if MODELS:
        assert default_model().name in names


@pytest.mark.parametrize("entry", MODELS, ids=lambda m: m.name)
def test_shipped_codec_weights_match_their_sha256_and_round_trip(entry):
    assert file_sha256(entry.path) == entry.sha256
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    for quality in range(1, entry.levels + 1) if entry.levels else [None]:
        data = psic.encode(image, model=entry.name, quality=quality, device="cpu")
        assert psic.inspect(data).model == (f"{entry.name}-q{quality}" if quality else entry.name)
        assert psic.decode(data, mode="full", device="cpu").size == (96, 64)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_shipped_surrogates_match_their_sha256_and_load(name):
    from psic.vlp import load_vlp

    entry = SURROGATES[name]
    assert file_sha256(weights_dir() / entry["weights"]) == entry["sha256"]
    vlp = load_vlp(name)
    image = np.full((1, 3, 224, 224), 0.5, dtype=np.float32)
    import torch

    features = vlp.encode_image(torch.from_numpy(image))
    assert features.shape[0] == 1 and torch.isfinite(features).all()


def test_each_mode_of_the_default_model_decodes_to_its_recorded_quality():
    """A swapped or broken mode moves these PSNRs (tests/data/make_mode_psnr.py records them)."""
    from make_mode_psnr import RECORDED, mode_psnr

    entry = default_model()
    recorded = json.loads(RECORDED.read_text()).get(entry.sha256)
    assert recorded is not None, f"no recorded PSNR for {entry.name} {entry.sha256[:8]}: run tests/data/make_mode_psnr.py"
    measured = mode_psnr(recorded["quality"])
    for mode in ("protected", "full"):
        assert measured[mode]["psnr"] == pytest.approx(recorded[mode]["psnr"], abs=0.05), mode
    assert measured["full"]["psnr"] > measured["protected"]["psnr"]


def test_the_default_model_decodes_the_same_pixels_at_any_thread_count():
    """Torch picks another convolution path at one thread; decoded pixels must not follow it."""
    import torch
    from PIL import Image

    with Image.open(Path(__file__).parent.parent / "examples" / "horse.png") as image:
        photo = np.asarray(image.convert("RGB"))[:256, :256]
    data = psic.encode(photo, device="cpu")
    threads = torch.get_num_threads()
    try:
        decodes = []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            decodes.append(np.asarray(psic.decode(data, mode="protected", device="cpu")))
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(decodes[0], other) for other in decodes[1:])
