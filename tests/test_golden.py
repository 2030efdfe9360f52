"""Golden files of every released format version must keep decoding, forever."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import psic
from psic.codec import coding
from psic.format import read_file

DATA = Path(__file__).parent / "data"
VERSIONS = sorted(p.stem for p in DATA.glob("golden-v*.psic"))


def test_golden_files_exist():
    assert "golden-v1" in VERSIONS


@pytest.mark.parametrize("stem", VERSIONS)
def test_golden_latent_checksum_is_stable(stem):
    from make_golden import latent_sha256  # tests/data is on sys.path via conftest

    expected = json.loads((DATA / f"{stem}.json").read_text())
    parsed = read_file((DATA / f"{stem}.psic").read_bytes())
    net = psic.load_model(str(DATA / f"{stem}.safetensors"), device="cpu")
    streams = coding.Bitstreams(parsed.z_string, parsed.y_string, parsed.header.index_crc)
    latent = coding.decode_latent(net, streams, parsed.header.height, parsed.header.width)
    assert latent_sha256(latent) == expected["latent_sha256"]


@pytest.mark.parametrize("stem", VERSIONS)
def test_golden_files_decode_in_both_modes(stem):
    keyword = json.loads((DATA / f"{stem}.json").read_text())["keyword"]
    data = (DATA / f"{stem}.psic").read_bytes()
    weights = str(DATA / f"{stem}.safetensors")
    info = psic.inspect(data)
    protected = psic.decode(data, model=weights)
    full = psic.decode(data, model=weights, key=keyword)
    assert protected.size == full.size == (info.width, info.height)
