"""Start a variable-rate gain network from a trained one-rate network.

Training compute is the scarcest resource, so a new network should not start from
random weights when a trained one exists. The analysis, hyperprior and entropy models
carry over as they are; each 5x5 stride-2 transposed convolution of the synthesis is
rewritten, exactly, as the 3x3 sub-pixel convolution that computes the same output, so
the gain network starts out decoding the one-rate network's level as well as it did.
"""

from __future__ import annotations

import torch
from torch import nn

from psic.codec.network import ConditionalHyperprior, Subpixel

#: Parameters (name prefixes) a network may have that its source lacks; they keep their initial
#: values, which leave the decode unchanged (zero level vectors, zero branch gates): a
#: level-conditioned trigger, or one with trigger branches, grows out of a network without.
GROWN_PARAMETERS = ("g_s.condition.level_embedding", "g_s.condition.gates.", "g_s.condition.branches.")


@torch.no_grad()
def subpixel_from_deconv(deconv: nn.ConvTranspose2d, conv: nn.Conv2d) -> None:
    """Set ``conv`` (3x3, 4*C_out channels, before a 2x pixel shuffle) to equal ``deconv``.

    Output pixel 2m + r of the transposed convolution (kernel 5, padding 2) sums input
    m + 1 - t times kernel tap 4 - 2t + r for t = 0, 1, 2, where the tap exists; the
    sub-pixel convolution's phase r holds exactly those taps.
    """
    if deconv.kernel_size != (5, 5) or deconv.stride != (2, 2) or deconv.padding != (2, 2):
        raise ValueError("only 5x5 stride-2 transposed convolutions with padding 2 convert")
    if deconv.bias is None or conv.bias is None:
        raise ValueError("both convolutions need biases")
    cin, cout = deconv.weight.shape[:2]
    weight = torch.zeros(cout, 2, 2, cin, 3, 3)  # (channel, row phase, column phase, input, ty, tx)
    for ry in range(2):
        for rx in range(2):
            for ty in range(3):
                for tx in range(3):
                    ky, kx = 4 - 2 * ty + ry, 4 - 2 * tx + rx
                    if ky <= 4 and kx <= 4:
                        weight[:, ry, rx, :, ty, tx] = deconv.weight[:, :, ky, kx].T
    conv.weight.copy_(weight.reshape(cout * 4, cin, 3, 3))
    conv.bias.copy_(deconv.bias.repeat_interleave(4))


@torch.no_grad()
def gain_network_from(one_rate: ConditionalHyperprior, target: ConditionalHyperprior) -> None:
    """Copy a one-rate network into a fresh gain network of the same N, M and CLTG width."""
    if one_rate.arch.variable_rate or not target.arch.variable_rate:
        raise ValueError("expected a one-rate source and a gain-network target")
    if (one_rate.arch.N, one_rate.arch.M, one_rate.arch.cond_hidden) != (
        target.arch.N, target.arch.M, target.arch.cond_hidden
    ):
        raise ValueError("source and target differ in N, M or the CLTG width")
    source = dict(one_rate.named_parameters())
    for name, parameter in target.named_parameters():
        if name in source and source[name].shape == parameter.shape:
            parameter.copy_(source[name])
    for old, new in zip(one_rate.g_s.deconvs, target.g_s.deconvs):
        if not isinstance(old, nn.ConvTranspose2d) or not isinstance(new, Subpixel):
            raise TypeError("expected transposed convolutions in the source and sub-pixel stages in the target")
        subpixel_from_deconv(old, new.conv)
