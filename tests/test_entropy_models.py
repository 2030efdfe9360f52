"""PSIC's own GDN and entropy models compute exactly what CompressAI's do.

The shipped weights were trained with CompressAI's layers; these tests hold the
reimplementation to the same state-dict names, initialization, training arithmetic,
gradients and CDF tables, so that weights load, train and decode unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from psic.codec.entropy_models import EntropyBottleneck, GaussianConditional
from psic.codec.layers import GDN
from psic.codec.network import scale_table

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import compressai.entropy_models as cai_entropy  # after psic loaded the extensions: they must be shared
    import compressai.layers as cai_layers


def twins(ours_factory, theirs_factory, seed=0):
    torch.manual_seed(seed)
    ours = ours_factory()
    torch.manual_seed(seed)
    theirs = theirs_factory()
    return ours, theirs


def assert_same_state(ours, theirs):
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_compressai_forward_and_backward(inverse):
    ours, theirs = twins(lambda: GDN(6, inverse=inverse), lambda: cai_layers.GDN(6, inverse=inverse))
    assert_same_state(ours, theirs)
    with torch.no_grad():  # move beta and gamma off their initial values, some onto the bound
        for module in (ours, theirs):
            module.beta.copy_(torch.linspace(-0.1, 2.0, 6))
            module.gamma.copy_(torch.linspace(-0.2, 0.5, 36).view(6, 6))
    x = torch.randn(2, 6, 5, 7)
    outputs = []
    for module in (ours, theirs):
        out = module(x)
        out.square().sum().backward()
        outputs.append((out, module.beta.grad, module.gamma.grad))
    for mine, reference in zip(*outputs):  # equal up to float rounding: ours sums as a matrix product
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)


def test_entropy_bottleneck_matches_compressai():
    ours, theirs = twins(lambda: EntropyBottleneck(5), lambda: cai_entropy.EntropyBottleneck(5))
    assert_same_state(ours, theirs)
    z = torch.randn(2, 5, 4, 3) * 4
    for training in (True, False):
        results = []
        for seed_module in (ours, theirs):
            torch.manual_seed(1)
            results.append(seed_module(z, training=training))
        for mine, reference in zip(*results):
            assert torch.equal(mine, reference)
    losses = [m.loss() for m in (ours, theirs)]
    assert torch.equal(*losses)
    for loss in losses:
        loss.backward()
    assert torch.equal(ours.quantiles.grad, theirs.quantiles.grad)
    with torch.no_grad():
        for module in (ours, theirs):
            module.quantiles.copy_(torch.tensor([-7.3, 0.4, 9.1]).repeat(5, 1, 1))
    ours.update(force=True)
    theirs.update(force=True)
    assert_same_state(ours, theirs)


def test_gaussian_conditional_matches_compressai():
    ours, theirs = GaussianConditional(None), cai_entropy.GaussianConditional(None)
    ours.update_scale_table(scale_table())
    theirs.update_scale_table(scale_table())
    assert_same_state(ours, theirs)
    y = torch.randn(1, 4, 6, 6) * 3
    scales = torch.rand(1, 4, 6, 6) * 5
    for training in (True, False):
        results = []
        for module in (ours, theirs):
            torch.manual_seed(2)
            results.append(module(y, scales, training=training))
        for mine, reference in zip(*results):
            assert torch.equal(mine, reference)
    assert torch.equal(ours.build_indexes(scales), theirs.build_indexes(scales))


def test_coding_does_not_import_the_compressai_package():
    code = "import sys, psic.codec.coding; sys.exit(any(m == 'compressai' or m.startswith('scipy') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
