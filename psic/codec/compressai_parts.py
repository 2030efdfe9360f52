"""CompressAI's two native pieces, loaded without CompressAI's package.

PSIC uses CompressAI's range coder (``ans``) and its CDF quantizer (``_CXX``), both small
C++ extensions. ``import compressai`` would also import its whole package (data sets,
model zoo, point-cloud code that pulls in torch_geometric and scipy): about 4.7 s on a
2-core CPU, paid by every ``psic`` call. So the extensions are loaded straight from
CompressAI's install directory, under their usual names so that a later ``import
compressai`` finds and shares them. Where that layout is absent, the ordinary import is
the fallback. The network layers PSIC needs are its own (:mod:`psic.codec.layers`,
:mod:`psic.codec.entropy_models`, with CompressAI's state-dict names and arithmetic);
this is the only module that touches CompressAI.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

_PACKAGE = "compressai"


def _extension_path(name: str) -> str | None:
    """Where CompressAI's extension ``name`` lies, found without importing the package."""
    spec = importlib.util.find_spec(_PACKAGE)
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, name + suffix)
            if os.path.isfile(path):
                return path
    return None


def load_extension(name: str) -> ModuleType:
    """The extension module ``compressai.<name>``, loaded on its own when possible."""
    qualified = f"{_PACKAGE}.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = _extension_path(name)
    if path is None:
        return importlib.import_module(qualified)  # another layout: the slow, ordinary import
    loader = importlib.machinery.ExtensionFileLoader(qualified, path)
    spec = importlib.util.spec_from_file_location(qualified, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[qualified] = module
    return module


ans = load_extension("ans")
_cxx = load_extension("_CXX")


def pmf_to_quantized_cdf(pmf: list[float], precision: int) -> list[int]:
    """CompressAI's integer CDF of a probability mass function (the range coder's table format)."""
    return list(_cxx.pmf_to_quantized_cdf(pmf, precision))


__all__ = ["ans", "load_extension", "pmf_to_quantized_cdf"]
