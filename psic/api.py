"""The public Python API: encode, decode and inspect ``.psic`` data.

Torch is imported only when pixels are coded, so ``import psic`` and header-only work
(``inspect``, ``list_models``) stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image

from psic import imageio, keys
from psic.codec.registry import ModelEntry, find_stream_model, registered_models
from psic.errors import MalformedError, ModelNotAvailableError, PsicError, PsicIOError, UsageError
from psic.format import Header, PsicFile, read_file, write_file
from psic.format.validate import check_meta_entry
from psic.modes import Mode, select_mode

if TYPE_CHECKING:
    from psic.codec.network import ConditionalHyperprior

ImageInput = str | os.PathLike | Image.Image | np.ndarray
PsicInput = bytes | bytearray | memoryview | str | os.PathLike
ModelSpec = str | os.PathLike | None
T = TypeVar("T")


@dataclass(frozen=True)
class FileInfo:
    """What ``psic info`` shows: the header of a ``.psic`` file, read without decoding it."""

    format_version: str
    width: int
    height: int
    source_mode: str
    model: str
    weights_sha256_prefix: str
    index_crc: str
    key_slots: int
    metadata: dict
    z_bytes: int
    y_bytes: int
    file_bytes: int

    @property
    def bpp(self) -> float:
        return self.file_bytes * 8 / (self.width * self.height)

    def to_dict(self) -> dict:
        return {**asdict(self), "bpp": round(self.bpp, 6)}


def encode(
    image: ImageInput,
    *,
    model: ModelSpec = None,
    quality: int | None = None,
    keys: Iterable[str] | str = (),
    device: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """Compress an image into ``.psic`` bytes; each keyword becomes a slot that unlocks full mode."""
    from psic.codec import coding

    rgb, source_mode = imageio.load_image(image)
    metadata = _checked_metadata(metadata)
    slots, error = _keyword_step(_make_slots, keys)
    del keys  # nothing raised below may keep a frame that holds a keyword
    if error is not None:
        raise error from None
    net = _model(model, quality, device)
    stream_name = net.identity.stream_name(quality)
    level = net.identity.quality_of(stream_name)
    streams = coding.compress(net, rgb, level)
    header = Header(
        width=rgb.shape[1],
        height=rgb.shape[0],
        source_mode=source_mode,
        model_name=stream_name,
        weights_prefix=net.identity.prefix,
        index_crc=streams.index_crc,
    )
    return write_file(PsicFile(header, streams.z, streams.y, key_slots=slots, metadata=metadata))


def decode(
    data: PsicInput,
    *,
    key: str | None = None,
    mode: Mode | str | None = None,
    device: str | None = None,
    model: ModelSpec = None,
) -> Image.Image:
    """Decode ``.psic`` data: protected by default, full with a keyword that matches a slot."""
    from psic.codec import coding

    parsed = read_file(_read_bytes(data))
    chosen, error = _keyword_step(select_mode, mode, key, parsed.key_slots)
    del key  # nothing raised below may keep a frame that holds the keyword
    if error is not None:
        raise error from None
    header = parsed.header
    net = _model_for_file(header, model, device)
    level = net.identity.quality_of(header.model_name)
    streams = coding.Bitstreams(z=parsed.z_string, y=parsed.y_string, index_crc=header.index_crc)
    latent = coding.decode_latent(net, streams, header.height, header.width)
    return imageio.to_pil(coding.render(net, latent, chosen.beta, header.height, header.width, level))


def inspect(data: PsicInput) -> FileInfo:
    """Read a file's header and sizes without decoding (and without importing torch)."""
    raw = _read_bytes(data)
    parsed = read_file(raw)
    header = parsed.header
    return FileInfo(
        format_version=f"{parsed.version[0]}.{parsed.version[1]}",
        width=header.width,
        height=header.height,
        source_mode=header.source_mode,
        model=header.model_name,
        weights_sha256_prefix=header.weights_prefix.hex(),
        index_crc=f"{header.index_crc:08x}",
        key_slots=len(parsed.key_slots),
        metadata=dict(parsed.metadata),
        z_bytes=len(parsed.z_string),
        y_bytes=len(parsed.y_string),
        file_bytes=len(raw),
    )


def list_models() -> tuple[ModelEntry, ...]:
    """The models installed with this package."""
    return registered_models()


def load_model(
    spec: ModelSpec = None, *, device: str | None = None, quality: int | None = None
) -> ConditionalHyperprior:
    """A registered model by name, a weights file by path, or the default model (sha256-verified)."""
    from psic.codec import weights

    return weights.load_model(spec, device=device, quality=quality)


def _keyword_step(step: Callable[..., T], *args: object) -> tuple[T | None, PsicError | None]:
    """Run a step that sees keywords; its error is returned, not raised, stripped of its traceback
    and context, so that no frame or exception that held a keyword or derived key stays reachable."""
    try:
        return step(*args), None
    except PsicError as exc:
        exc.__context__ = exc.__cause__ = None
        return None, exc.with_traceback(None)


def _make_slots(keywords: Iterable[str] | str) -> tuple:
    if isinstance(keywords, str):
        keywords = (keywords,)
    return keys.make_slots(keywords)


def _checked_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Refuse bad metadata as the caller's mistake, before any pixels are coded."""
    checked = dict(metadata or {})
    for key, value in checked.items():
        try:
            check_meta_entry(key, value)
        except MalformedError as exc:
            raise UsageError(str(exc)) from None
    return checked


def _read_bytes(data: PsicInput) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    try:
        with open(data, "rb") as f:
            return f.read()
    except TypeError:
        raise PsicIOError(f"expected bytes or a path, got {type(data).__name__}") from None
    except OSError as exc:
        raise PsicIOError(f"cannot read {data}: {exc.strerror or exc}") from None


def _model(spec: ModelSpec, quality: int | None, device: str | None) -> ConditionalHyperprior:
    from psic.codec import weights

    path, expected = weights.resolve_model_path(spec, quality)
    resolved = weights.resolve_device(device)
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        raise ModelNotAvailableError(f"weights file not found: {path}") from None
    return _cached_model(str(path), expected, str(resolved), stamp)


@lru_cache(maxsize=4)
def _cached_model(path: str, expected_sha256: str | None, device: str, _stamp: int) -> ConditionalHyperprior:
    """Weights load once per process; the file's mtime in the key notices a replaced file."""
    from psic.codec import weights

    return weights.load_weights_file(path, expected_sha256, device)


def _model_for_file(header: Header, spec: ModelSpec, device: str | None) -> ConditionalHyperprior:
    if spec is None:
        entry = find_stream_model(header.model_name)
        if entry is None:
            raise ModelNotAvailableError(
                f"this file needs model {header.model_name!r}, which is not installed; pass its weights file"
            )
        spec = entry.name
    net = _model(spec, None, device)
    if net.identity.prefix != header.weights_prefix:
        raise ModelNotAvailableError(
            f"this file needs weights {header.weights_prefix.hex()} of model {header.model_name!r}; "
            f"the model given has weights {net.identity.prefix.hex()}"
        )
    return net
