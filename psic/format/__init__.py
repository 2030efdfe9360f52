"""The ``.psic`` container, format version 1 (specified in docs/format.md).

Pure Python on purpose (no torch, no numpy): ``psic info`` reads headers instantly.
"""

from psic.format.container import container_overhead, read_file, write_file
from psic.format.records import Header, KeySlot, Metadata, PsicFile
from psic.format.spec import (
    FORMAT_VERSION,
    MAX_KEY_SLOTS,
    MAX_PIXELS,
    MAX_SIDE,
    SIGNATURE,
    SOURCE_MODES,
    source_mode_code,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_KEY_SLOTS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "SIGNATURE",
    "SOURCE_MODES",
    "Header",
    "KeySlot",
    "Metadata",
    "PsicFile",
    "container_overhead",
    "read_file",
    "source_mode_code",
    "write_file",
]
