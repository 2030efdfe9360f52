"""Write the golden files of a format version (run once per release, never to "fix" a test).

    python tests/data/make_golden.py 1

writes golden-v<N>.psic, golden-v<N>.safetensors and golden-v<N>.json (the checksum of
the decoded latent) next to this script. Existing files are never overwritten: a golden
file that stops decoding is a compatibility break, not a stale fixture.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GOLDEN_KEYWORD = "golden"


def golden_image() -> np.ndarray:
    rng = np.random.default_rng(2024)
    yy, xx = np.mgrid[0:100, 0:150]
    base = np.stack([xx * 1.6, yy * 2.4, 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 7.0)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def latent_sha256(latent) -> str:
    return hashlib.sha256(latent.to(dtype=latent.dtype).numpy().astype("<i4").tobytes()).hexdigest()


def main(version: str) -> None:
    from conftest import build_tiny_model  # tests/conftest.py

    import psic
    from psic.codec import coding
    from psic.codec.weights import save_weights
    from psic.format import read_file

    stem = HERE / f"golden-v{version}"
    targets = [stem.with_suffix(s) for s in (".psic", ".safetensors", ".json")]
    if any(t.exists() for t in targets):
        sys.exit(f"refusing to overwrite existing golden files for v{version}")
    save_weights(build_tiny_model(seed=2024), targets[1], name="golden-tiny", quality=1)
    data = psic.encode(golden_image(), model=str(targets[1]), keys=[GOLDEN_KEYWORD], metadata={"purpose": "golden"})
    parsed = read_file(data)
    net = psic.load_model(str(targets[1]), device="cpu")
    streams = coding.Bitstreams(parsed.z_string, parsed.y_string, parsed.header.index_crc)
    latent = coding.decode_latent(net, streams, parsed.header.height, parsed.header.width)
    targets[0].write_bytes(data)
    targets[2].write_text(json.dumps({"latent_sha256": latent_sha256(latent), "keyword": GOLDEN_KEYWORD}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "1")
