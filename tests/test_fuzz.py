"""Fuzzing the decoder: a few hundred mutated files, each decoded in worker processes (see fuzzing.py).

benchmarks/fuzz.py runs the same fuzzer for 10^5 cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzzing import Worker, run

import psic

CASES = 240


@pytest.fixture(scope="module")
def seeds(tiny_model_path) -> list[bytes]:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for height, width in ((70, 90), (64, 64))]
    files = [psic.encode(image, model=str(tiny_model_path)) for image in images]
    return [*files, psic.encode(images[0], model=str(tiny_model_path), metadata={"title": "a photo"})]


def test_fuzzed_files_end_in_typed_errors_or_the_same_pixels(seeds, tiny_model_path):
    # Pixels must match across calls, processes and thread counts.
    workers = [Worker(tiny_model_path, threads) for threads in (1, 2)]
    try:
        summary = run(seeds, workers, CASES, seed=10)
    finally:
        for worker in workers:
            worker.close()
    assert summary.failures == []
    assert summary.cases == CASES
    assert summary.crashes == summary.hangs == summary.untyped_errors == summary.nondeterministic == 0
    assert summary.defined_decodes > 0 and sum(summary.typed_errors.values()) > CASES // 2
