"""The CompressAI pieces PSIC builds on, imported in one place.

CompressAI's package import emits a deprecation warning from torch.jit that users of
PSIC cannot act on; it is silenced here and nowhere else.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=FutureWarning)
    from compressai import ans
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN

__all__ = ["GDN", "EntropyBottleneck", "GaussianConditional", "ans"]
