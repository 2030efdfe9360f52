"""Immutable records a ``.psic`` file is read into and written from."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from psic.format.spec import BASE_VERSION, FORMAT_VERSION


class Metadata(Mapping[str, str]):
    """Read-only, hashable str -> str mapping, so that a frozen :class:`PsicFile` stays hashable."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = dict(items or {})

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"Metadata({self._items!r})"


@dataclass(frozen=True)
class Header:
    """Contents of the HEAD chunk: what a decoder needs before touching the latents."""

    width: int
    height: int
    source_mode: str
    model_name: str
    weights_prefix: bytes
    index_crc: int


@dataclass(frozen=True)
class KeySlot:
    """One keyword slot of the KEYS chunk (scrypt parameters and a keyword verifier)."""

    kdf: int
    salt: bytes
    log2_n: int
    r: int
    p: int
    verifier: bytes


@dataclass(frozen=True)
class PsicFile:
    """A whole ``.psic`` file.

    ``version`` records what :func:`read_file` found; :func:`write_file` writes 1.1 when
    the file has an ICC profile or EXIF, else 1.0. ``key_slots`` and ``metadata`` are
    frozen on construction. ``exif`` is a TIFF structure (no ``Exif\0\0`` header).
    """

    header: Header
    z_string: bytes
    y_string: bytes
    key_slots: tuple[KeySlot, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=Metadata)
    version: tuple[int, int] | None = None  # None: the version write_file writes for it
    icc_profile: bytes | None = None
    exif: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_slots", tuple(self.key_slots))
        object.__setattr__(self, "metadata", Metadata(self.metadata))
        version = self.version or (FORMAT_VERSION if self.icc_profile or self.exif else BASE_VERSION)
        object.__setattr__(self, "version", tuple(version))
