"""A structure-aware fuzzer for the decoder, shared by tests/test_fuzz.py and benchmarks/fuzz.py.

Cases are genuine files with one or two mutations of their header fields, latent strings,
metadata or raw bytes; chunk CRCs are recomputed (except for raw byte flips), so that most
cases get past the container and reach the codec. Each case is decoded by persistent worker
processes, twice in each, so that a crash (the worker dies), a hang, an untyped exception and
a nondeterministic output (different pixels between calls, processes or thread counts) are
all counted instead of ending the run. The first worker decodes every case; the others (other
processes, possibly other thread counts) decode again the cases that gave pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from psic.format import Header, read_file, write_file
from psic.format.chunks import Chunk, Preamble, build_file
from psic.format.payloads import encode_latn
from psic.format.spec import HEAD, LATN, MAX_SIDE, META
from psic.format.varint import VarInt32

CASE_TIMEOUT_S = 120
_HIGH_BYTES = bytes(range(128, 256)) * 2
MAX_MESSAGE = 200  # longest error message a decoder may give


# --- mutations ---------------------------------------------------------------------------


def _head_payload(header: Header, width: int, height: int) -> bytes:
    """A HEAD payload with any varint dimensions (the writer would refuse illegal ones)."""
    name = header.model_name.encode()
    return (
        VarInt32().build(width)
        + VarInt32().build(height)
        + b"\x00"
        + bytes([len(name)])
        + name
        + header.weights_prefix
        + struct.pack(">I", header.index_crc)
    )


def _raw_file(head: bytes, latn: bytes, extra: tuple[Chunk, ...] = ()) -> bytes:
    return build_file(Preamble(1, 0, 0), [Chunk(HEAD, head), *extra, Chunk(LATN, latn)])


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One of the usual byte-level damages to an entropy-coded string."""
    choice = rng.randrange(9)
    if choice == 0:
        return b""
    if choice == 1:
        return data[: rng.randrange(max(1, len(data)))]
    if choice == 2:
        return data + rng.randbytes(rng.randrange(1, 64))
    if choice == 3:
        return b"\xff" * rng.choice([4, 10, 64, 4096, 600_000])
    if choice == 4:
        return rng.randbytes(rng.choice([8, 12, 100, 1000]))
    if choice == 5:
        return b"\x00" * rng.choice([8, 64, 4096])
    flipped = bytearray(data or b"\x00")
    for _ in range(rng.randrange(1, 4)):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    if choice == 6:
        return bytes(flipped)
    if choice == 7:
        return bytes(flipped[:-4] + b"\xff\xff\xff\xff")
    return data[: len(data) // 2] + data[len(data) // 2 :][::-1]


def mutate(seed_file: bytes, rng: random.Random) -> tuple[str, bytes]:
    """(mutation name, mutated file) of a genuine file."""
    f = read_file(seed_file)
    h = f.header
    kind = rng.choice(["size", "size-huge", "z", "y", "z+y", "swap", "crc", "meta", "model", "raw", "head-raw"])
    if kind == "size":
        width, height = max(1, h.width + rng.randint(-80, 80)), max(1, h.height + rng.randint(-80, 80))
        return kind, _raw_file(_head_payload(h, width, height), encode_latn(f.z_string, f.y_string))
    if kind == "size-huge":
        width = rng.choice([MAX_SIDE, 4096, 2048, 0, MAX_SIDE + 1, 2**31])
        height = rng.choice([2048, 4096, 1, 16384, 0])
        strings = rng.choice([(b"", b""), (f.z_string, f.y_string), (f.z_string, b"")])
        return kind, _raw_file(_head_payload(h, width, height), encode_latn(*strings))
    if kind in ("z", "y", "z+y"):
        z = _mutate_bytes(f.z_string, rng) if "z" in kind else f.z_string
        y = _mutate_bytes(f.y_string, rng) if "y" in kind else f.y_string
        return kind, write_file(dataclasses.replace(f, z_string=z, y_string=y))
    if kind == "swap":
        return kind, write_file(dataclasses.replace(f, z_string=f.y_string, y_string=f.z_string))
    if kind == "crc":
        header = dataclasses.replace(h, index_crc=rng.getrandbits(32))
        return kind, write_file(dataclasses.replace(f, header=header))
    if kind == "meta":
        value = rng.randbytes(rng.choice([10, 1000, 2**20])).translate(_HIGH_BYTES)  # never UTF-8
        extra = (Chunk(META, b"key\x00" + value),)
        return kind, _raw_file(_head_payload(h, h.width, h.height), encode_latn(f.z_string, f.y_string), extra)
    if kind == "model":
        header = dataclasses.replace(h, weights_prefix=rng.randbytes(4))
        return kind, write_file(dataclasses.replace(f, header=header))
    raw = bytearray(seed_file)
    start = 12 if kind == "raw" else 16
    for _ in range(rng.randrange(1, 4)):
        raw[rng.randrange(start, len(raw))] = rng.randrange(256)
    return kind, bytes(raw)


# --- the worker process ------------------------------------------------------------------


def worker_main(weights: str, threads: int) -> None:
    """Decode length-prefixed cases from stdin; one JSON line per case on stdout."""
    import numpy as np
    import torch

    import psic
    from psic.errors import PsicError

    torch.set_num_threads(threads)
    stdin, stdout = sys.stdin.buffer, sys.stdout
    while header := stdin.read(4):
        data = stdin.read(int.from_bytes(header, "big"))
        start = time.perf_counter()
        digests = []
        for _ in range(2):
            try:
                digests.append(hashlib.sha256(np.asarray(psic.decode(data, model=weights)).tobytes()).hexdigest())
            except PsicError as exc:
                digests.append(f"{type(exc).__name__}:{_message_problem(exc)}")
            except Exception as exc:  # noqa: BLE001 - counting untyped errors is the point
                digests.append(f"untyped {type(exc).__name__}: {str(exc)[:100]}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        line = {"results": digests, "seconds": time.perf_counter() - start, "peak_rss": peak}
        stdout.write(json.dumps(line) + "\n")
        stdout.flush()


def _message_problem(exc: BaseException) -> str:
    """'' when the message is short and nothing is chained, else what is wrong."""
    if len(str(exc)) > MAX_MESSAGE:
        return f"message of {len(str(exc))} characters"
    if exc.__cause__ is not None and len(str(exc.__cause__)) > MAX_MESSAGE:
        return "long chained cause"
    return ""


class Worker:
    """A persistent decoding child process, restarted after it dies or hangs."""

    def __init__(self, weights: Path, threads: int) -> None:
        self.weights, self.threads = weights, threads
        self.process: subprocess.Popen | None = self._start()  # workers start (import torch) side by side

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "PYTHONWARNINGS": "ignore"}
        code = f"import fuzzing; fuzzing.worker_main({str(self.weights)!r}, {self.threads})"
        return subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).parent,
            env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        )

    def decode(self, data: bytes) -> dict:
        """The worker's result line, or {"crash": returncode} / {"hang": True}."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        try:
            self.process.stdin.write(len(data).to_bytes(4, "big") + data)
            self.process.stdin.flush()
        except BrokenPipeError:
            return self._died()
        line = _read_line(self.process, CASE_TIMEOUT_S)
        if line is None:
            self.close()
            return {"hang": True}
        return json.loads(line) if line else self._died()

    def _died(self) -> dict:
        code = self.process.wait()
        self.process = None
        return {"crash": code}

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _read_line(process: subprocess.Popen, timeout: float) -> bytes | None:
    """A line from the worker, b"" if it died, None if it took longer than ``timeout``."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return process.stdout.readline()


# --- a run -------------------------------------------------------------------------------


@dataclass
class Summary:
    """What a run counts; ``failures`` lists the cases that break the decoder's promise."""

    cases: int = 0
    typed_errors: Counter = field(default_factory=Counter)
    defined_decodes: int = 0
    crashes: int = 0
    hangs: int = 0
    untyped_errors: int = 0
    long_messages: int = 0
    nondeterministic: int = 0
    peak_rss: int = 0
    slowest: tuple[float, str] = (0.0, "")
    failures: list[str] = field(default_factory=list)

    def add(self, name: str, results: list[dict]) -> None:
        self.cases += 1
        outcomes = []
        for result in results:
            if "crash" in result or "hang" in result:
                self.crashes += "crash" in result
                self.hangs += "hang" in result
                self.failures.append(f"{name}: {result}")
                return
            outcomes.extend(result["results"])
            self.peak_rss = max(self.peak_rss, result["peak_rss"])
            self.slowest = max(self.slowest, (result["seconds"] / 2, name))
        self._judge(name, outcomes)

    def _judge(self, name: str, outcomes: list[str]) -> None:
        first = outcomes[0]
        if any(outcome != first for outcome in outcomes):
            self.nondeterministic += 1
            self.failures.append(f"{name}: nondeterministic {outcomes}")
        elif first.startswith("untyped"):
            self.untyped_errors += 1
            self.failures.append(f"{name}: {first}")
        elif ":" in first:
            error, problem = first.split(":", 1)
            self.typed_errors[error] += 1
            if problem:
                self.long_messages += 1
                self.failures.append(f"{name}: {error} {problem}")
        else:
            self.defined_decodes += 1


def run(seeds: list[bytes], workers: list[Worker], cases: int, seed: int, deadline: float | None = None) -> Summary:
    """Fuzz ``cases`` mutated files (fewer if ``deadline``, a time.monotonic() value, passes first)."""
    rng = random.Random(seed)
    summary = Summary()
    for number in range(cases):
        if deadline is not None and time.monotonic() > deadline:
            break
        kind, data = mutate(rng.choice(seeds), rng)
        if rng.random() < 0.2 and _readable(data):
            second, data = mutate(data, rng)
            kind = f"{kind}+{second}"
        summary.add(f"case {number} ({kind})", _decode_everywhere(data, workers))
    return summary


def _decode_everywhere(data: bytes, workers: list[Worker]) -> list[dict]:
    """The first worker's result, plus the others' when it decoded pixels (errors come before any float math)."""
    first = workers[0].decode(data)
    if "results" not in first or ":" in first["results"][0] or first["results"][0].startswith("untyped"):
        return [first]
    return [first, *(worker.decode(data) for worker in workers[1:])]


def _readable(data: bytes) -> bool:
    try:
        read_file(data)
    except Exception:  # noqa: BLE001 - any refusal means no second mutation
        return False
    return True
