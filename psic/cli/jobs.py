"""The work of one file for each coding command, as picklable functions for worker processes.

Each function reads its input, calls :mod:`psic.api` and writes its output atomically;
it returns the bytes written and raises typed errors. Library warnings are collected by
:func:`psic.cli.batch.run_job`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from PIL import Image

from psic.cli import output
from psic.cli.batch import Job
from psic.cli.options import LOSSY_FORMATS
from psic.errors import LossyOutputWarning, PsicIOError, UsageError


@dataclass(frozen=True)
class EncodeSettings:
    keys: tuple[str, ...]
    quality: int | None
    model: str | None
    device: str | None
    effort: int
    metadata: dict[str, str]
    icc: bool
    exif: bool
    keep_gps: bool
    force: bool


@dataclass(frozen=True)
class DecodeSettings:
    keyword: str | None
    mode: str | None
    model: str | None
    device: str | None
    fmt: str
    force: bool

    @property
    def protected(self) -> bool:
        return self.mode == "protected" or (self.mode is None and self.keyword is None)


@dataclass(frozen=True)
class ProtectSettings:
    keys: tuple[str, ...]
    quality: int | None
    model: str | None
    device: str | None
    effort: int
    keep_gps: bool
    fmt: str
    psic_target: str | None
    force: bool


def encode_file(job: Job, s: EncodeSettings) -> int:
    from psic import api

    source = output.read_input(job.source) if output.is_stdio(job.source) else job.source
    data = api.encode(
        source, model=s.model, quality=s.quality, keys=s.keys, device=s.device, effort=s.effort, metadata=s.metadata,
        icc=s.icc, exif=s.exif, keep_gps=s.keep_gps,
    )
    output.write_output(job.target, data, force=s.force)
    return len(data)


def decode_file(job: Job, s: DecodeSettings) -> int:
    from psic import api

    image = api.decode(output.read_input(job.source), key=s.keyword, mode=s.mode, device=s.device, model=s.model)
    written = save_image(image, job.target, s.fmt, force=s.force)
    if s.protected:
        warn_if_lossy(s.fmt)
    return written


def protect_file(job: Job, s: ProtectSettings) -> int:
    from psic import api

    source = output.read_input(job.source) if output.is_stdio(job.source) else job.source
    result = api.protect(
        source, model=s.model, quality=s.quality, keys=s.keys, device=s.device, effort=s.effort, keep_gps=s.keep_gps
    )
    if s.psic_target is not None:
        output.write_output(s.psic_target, result.data, force=s.force)
    written = save_image(result.image, job.target, s.fmt, force=s.force)
    warn_if_lossy(s.fmt)
    return written


def warn_if_lossy(fmt: str) -> None:
    if fmt in LOSSY_FORMATS:
        warnings.warn(
            f"{fmt} is lossy; re-compression may weaken the protection (PNG keeps it intact)",
            LossyOutputWarning,
            stacklevel=2,
        )


def save_image(image: Image.Image, target: str, fmt: str, *, force: bool) -> int:
    """Write ``image`` as ``fmt`` atomically, with its ICC profile and EXIF where the format takes them."""
    extras = {name: image.info[name] for name in ("icc_profile", "exif") if image.info.get(name)}
    with output.atomic_output(target, force=force) as handle:
        try:
            image.save(handle, format=fmt, **extras)
        except OSError as exc:
            if exc.errno is not None:  # the file system failed
                raise PsicIOError(f"cannot write {output.display_name(target)}: {exc.strerror or exc}") from None
            raise UsageError(f"cannot write this image as {fmt}: {exc}") from None
        except (ValueError, KeyError) as exc:  # Pillow: the format does not take this image
            raise UsageError(f"cannot write this image as {fmt}: {exc}") from None
        return handle.tell()
