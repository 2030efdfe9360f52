"""PSIC: privacy-shielded image compression.

One ``.psic`` bitstream decodes two ways: *protected* (the default; a decoder-generated
pattern makes vision-language models misread it) and *full* (the faithful image, for
holders of a keyword the encoder registered)::

    import psic
    data = psic.encode("photo.png", keys=["word"])
    protected = psic.decode(data)
    full = psic.decode(data, key="word")

Importing this package does not import torch; coding pixels does.
"""

from psic import errors
from psic._version import __version__
from psic.api import FileInfo, Protected, decode, encode, inspect, list_models, load_model, protect
from psic.modes import Mode
from psic.pillow import register_pillow

__all__ = [
    "FileInfo",
    "Mode",
    "Protected",
    "__version__",
    "decode",
    "encode",
    "errors",
    "inspect",
    "list_models",
    "load_model",
    "protect",
    "register_pillow",
]
