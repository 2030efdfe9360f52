"""The public Python API: encode, decode and inspect ``.psic`` data.

Torch is imported only when pixels are coded, so ``import psic`` and header-only work
(``inspect``, ``list_models``) stay fast.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from PIL import Image

from psic import imageio, keys, photo
from psic.codec.registry import ModelEntry, ModelIdentity, find_stream_model, registered_models, resolve_model_path
from psic.errors import ConversionWarning, MalformedError, ModelNotAvailableError, PsicError, PsicIOError, UsageError
from psic.format import Header, PsicFile, read_file, write_file
from psic.format.validate import check_meta_entry
from psic.modes import Mode, select_mode

if TYPE_CHECKING:
    from psic.codec.network import ConditionalHyperprior

ImageInput = imageio.ImageInput
PsicInput = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO
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
    icc_profile_bytes: int
    exif_bytes: int
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
    effort: int = 0,
    metadata: Mapping[str, str] | None = None,
    icc: bool = True,
    exif: bool = True,
    keep_gps: bool = False,
) -> bytes:
    """Compress an image into ``.psic`` bytes; each keyword becomes a slot that unlocks full mode.

    ``image`` is a path, encoded image bytes, a binary file object, a PIL image or an
    array. The photo's ICC profile and EXIF are kept (``icc=False`` / ``exif=False`` drop
    them), EXIF without its GPS block unless ``keep_gps``. What 8-bit RGB cannot hold
    (animation, 16-bit samples, transparency, greyscale) is reported as a
    :class:`~psic.errors.ConversionWarning`. ``effort`` 1-3 refines the latent for this
    image (effort 2: about 4 % fewer bytes for the same quality on photos), for tens of
    times the encode time; 0, the default, is the fast encoder. Any decoder reads the result.
    """
    from psic.codec import coding

    _check_effort(effort)
    metadata = _checked_metadata(metadata)
    resolve_model_path(model, quality)  # an unknown model fails before any work
    source = imageio.read_source(image)
    for note in photo.conversion_warnings(source):
        warnings.warn(note, ConversionWarning, stacklevel=2)
    slots, error = _keyword_step(_make_slots, keys)
    del keys  # nothing raised below may keep a frame that holds a keyword
    if error is not None or slots is None:
        raise error or UsageError("no keyword slots were made") from None
    net = _model(model, quality, device)
    if effort and not net.arch.variable_rate:
        raise UsageError("effort above 0 needs a model with quality levels (e.g. psic-vr)")
    rgb = source.rgb
    identity = _identity(net)
    stream_name = identity.stream_name(quality)
    level = identity.quality_of(stream_name)
    streams = coding.compress(net, rgb, level, effort)
    header = Header(
        width=rgb.shape[1],
        height=rgb.shape[0],
        source_mode=source.mode,
        model_name=stream_name,
        weights_prefix=identity.prefix,
        index_crc=streams.index_crc,
    )
    return write_file(
        PsicFile(
            header, streams.z, streams.y, key_slots=slots, metadata=metadata,
            icc_profile=source.icc_profile if icc else None,
            exif=photo.stored_exif(source.exif, keep_gps) if exif else None,
        )
    )


def decode(
    data: PsicInput,
    *,
    key: str | None = None,
    mode: Mode | str | None = None,
    device: str | None = None,
    model: ModelSpec = None,
) -> Image.Image:
    """Decode ``.psic`` data (bytes, a path or a binary file object) into a PIL image.

    Protected by default, full with a keyword that matches a slot. A greyscale source
    decodes to an "L" image; the ICC profile and EXIF the file carries are in
    ``image.info["icc_profile"]`` (Pillow's ``save`` writes it back by itself) and
    ``image.info["exif"]`` (pass ``exif=image.info["exif"]`` to ``save``).
    """
    from psic.codec import coding

    parsed = read_file(_read_bytes(data))
    chosen, error = _keyword_step(select_mode, mode, key, parsed.key_slots)
    del key  # nothing raised below may keep a frame that holds the keyword
    if error is not None or chosen is None:
        raise error or UsageError("no decode mode was chosen") from None
    header = parsed.header
    net = _model_for_file(header, model, device)
    level = _identity(net).quality_of(header.model_name)
    streams = coding.Bitstreams(z=parsed.z_string, y=parsed.y_string, index_crc=header.index_crc)
    latent = coding.decode_latent(net, streams, header.height, header.width)
    pixels = coding.render(net, latent, chosen.beta, header.height, header.width, level)
    return _as_photo(imageio.to_pil(pixels), parsed)


@dataclass(frozen=True)
class Protected:
    """What :func:`protect` returns: the protected image and the ``.psic`` file it came from."""

    image: Image.Image
    data: bytes


def protect(
    image: ImageInput,
    *,
    model: ModelSpec = None,
    quality: int | None = None,
    keys: Iterable[str] | str = (),
    device: str | None = None,
    effort: int = 0,
    keep_gps: bool = False,
) -> Protected:
    """Encode and decode protected in one step: the image to publish, and the owner's ``.psic``."""
    data = encode(image, model=model, quality=quality, keys=keys, device=device, effort=effort, keep_gps=keep_gps)
    return Protected(decode(data, mode=Mode.PROTECTED, device=device, model=model), data)


def inspect(data: PsicInput) -> FileInfo:
    """Read a file's header and sizes without decoding (and without importing torch)."""
    raw = _read_bytes(data)
    parsed = read_file(raw)
    header = parsed.header
    major, minor = parsed.version or (0, 0)  # read_file always records the version
    return FileInfo(
        format_version=f"{major}.{minor}",
        width=header.width,
        height=header.height,
        source_mode=header.source_mode,
        model=header.model_name,
        weights_sha256_prefix=header.weights_prefix.hex(),
        index_crc=f"{header.index_crc:08x}",
        key_slots=len(parsed.key_slots),
        metadata=dict(parsed.metadata),
        icc_profile_bytes=len(parsed.icc_profile or b""),
        exif_bytes=len(parsed.exif or b""),
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


def _as_photo(image: Image.Image, parsed: PsicFile) -> Image.Image:
    """Greyscale back to "L"; the file's ICC profile and EXIF attached for saving."""
    if parsed.header.source_mode in photo.GREY_MODES:
        image = image.convert("L")
    if parsed.icc_profile:
        image.info["icc_profile"] = parsed.icc_profile
    if parsed.exif:
        image.info["exif"] = photo.exif_for_pillow(parsed.exif)
    return image


def _read_bytes(data: PsicInput) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if callable(getattr(data, "read", None)):
        try:
            raw = data.read()  # type: ignore[union-attr]
        except OSError as exc:
            raise PsicIOError(f"cannot read the file object: {exc.strerror or exc}") from None
        if not isinstance(raw, bytes):
            raise PsicIOError("the file object must be opened in binary mode")
        return raw
    try:
        with open(data, "rb") as f:  # type: ignore[arg-type]  # anything else is a TypeError below
            return f.read()
    except TypeError:
        raise PsicIOError(f"expected bytes, a path or a binary file object, got {type(data).__name__}") from None
    except OSError as exc:
        raise PsicIOError(f"cannot read {data}: {exc.strerror or exc}") from None


def _check_effort(effort: int) -> None:
    from psic.codec.effort import iterations_for

    try:
        iterations_for(effort)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _model(spec: ModelSpec, quality: int | None, device: str | None) -> ConditionalHyperprior:
    from psic.codec import weights

    path, expected = resolve_model_path(spec, quality)
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
    identity = _identity(net)
    if identity.prefix != header.weights_prefix:
        raise ModelNotAvailableError(
            f"this file needs weights {header.weights_prefix.hex()} of model {header.model_name!r}; "
            f"the model given has weights {identity.prefix.hex()}"
        )
    return net


def _identity(net: ConditionalHyperprior) -> ModelIdentity:
    """Which weights a network has; every model this module loads comes from a weights file."""
    if net.identity is None:
        raise ModelNotAvailableError("the model was not loaded from a weights file")
    return net.identity
