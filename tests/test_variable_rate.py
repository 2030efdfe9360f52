"""One gain network for the whole quality ladder: levels, the names files record, warm starts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_tiny_model
from torch import nn

import psic
from psic.codec.network import GAIN_ARCHITECTURE, Architecture, ConditionalHyperprior
from psic.codec.weights import load_weights_file, save_weights
from psic.errors import ModelNotAvailableError, UsageError
from psic.train.warm_start import gain_network_from, subpixel_from_deconv


def test_subpixel_convolution_reproduces_a_transposed_convolution():
    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(6, 5, 5, stride=2, padding=2, output_padding=1)
    conv = nn.Conv2d(6, 20, 3, padding=1)
    subpixel_from_deconv(deconv, conv)
    x = torch.randn(2, 6, 7, 9)
    expected = deconv(x)
    assert torch.allclose(nn.PixelShuffle(2)(conv(x)), expected, atol=1e-5)


def test_warm_started_gain_network_decodes_quality_3_like_its_source():
    source = build_tiny_model(seed=4)
    target = ConditionalHyperprior(Architecture(8, 12, 16, GAIN_ARCHITECTURE, 8)).eval()
    gain_network_from(source, target)
    x = torch.rand(1, 3, 64, 64)
    level = torch.tensor([2])  # quality 3 starts at unit gain
    with torch.no_grad():
        y = target.analysis(x, level)
        assert torch.equal(y, source.g_a(x))
        for beta in (0.0, 1.0):
            condition = torch.tensor([beta])
            assert torch.allclose(target.synthesis(y.round(), condition, level), source.g_s(y.round(), condition), atol=1e-5)


def test_files_record_the_level_in_the_model_name(photo, tiny_gain_model_path):
    data = psic.encode(photo, model=str(tiny_gain_model_path), quality=5)
    assert psic.inspect(data).model == "tiny-vr-q5"
    assert psic.decode(data, model=str(tiny_gain_model_path)).size == (90, 70)


def test_higher_quality_spends_more_bytes(photo, tiny_gain_model_path):
    sizes = [len(psic.encode(photo, model=str(tiny_gain_model_path), quality=q)) for q in (1, 8)]
    assert sizes[0] < sizes[1]


def test_each_level_decodes_with_its_own_inverse_gain(photo, tiny_gain_model_path):
    low = psic.encode(photo, model=str(tiny_gain_model_path), quality=1)
    high = psic.encode(photo, model=str(tiny_gain_model_path), quality=8)
    a = np.asarray(psic.decode(low, model=str(tiny_gain_model_path), mode="full"), dtype=float)
    b = np.asarray(psic.decode(high, model=str(tiny_gain_model_path), mode="full"), dtype=float)
    assert a.shape == b.shape and not np.array_equal(a, b)


@pytest.mark.parametrize("quality", [0, 9])
def test_quality_outside_the_ladder_is_refused(photo, tiny_gain_model_path, quality):
    with pytest.raises(ModelNotAvailableError, match="qualities 1-8"):
        psic.encode(photo, model=str(tiny_gain_model_path), quality=quality)


def test_a_one_rate_model_refuses_another_quality(photo):
    entry = next(m for m in psic.list_models() if m.quality is not None)
    with pytest.raises(UsageError, match="has quality"):
        psic.encode(photo, model=entry.name, quality=entry.quality + 1)


def test_a_file_naming_a_missing_level_is_refused(photo, tiny_gain_model_path):
    from psic.format import read_file, write_file
    from psic.format.records import Header

    parsed = read_file(psic.encode(photo, model=str(tiny_gain_model_path), quality=2))
    fields = {**parsed.header.__dict__, "model_name": "tiny-vr-q9"}
    forged = write_file(parsed.__class__(Header(**fields), parsed.z_string, parsed.y_string))
    with pytest.raises(ModelNotAvailableError, match="tiny-vr-q9"):
        psic.decode(forged, model=str(tiny_gain_model_path))


def test_export_fits_the_quantiles_of_the_entropy_bottleneck(tmp_path, tiny_gain_model_path):
    from psic.train.checkpoint import model_from_file
    from psic.train.export import export_weights

    before = float(model_from_file(tiny_gain_model_path).aux_loss())
    data, aux = export_weights(tiny_gain_model_path, name="tiny-vr")
    assert aux < before / 2
    path = tmp_path / "exported.safetensors"
    path.write_bytes(data)
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert psic.decode(psic.encode(image, model=str(path), quality=4), model=str(path)).size == (64, 64)


def level_trigger_network(seed: int) -> ConditionalHyperprior:
    torch.manual_seed(seed)
    return ConditionalHyperprior(Architecture(8, 12, 16, GAIN_ARCHITECTURE, 8, level_trigger=True)).eval()


def test_a_level_trigger_grows_out_of_a_level_blind_network_unchanged(tmp_path):
    from psic.train.checkpoint import load_initial_parameters

    blind = build_tiny_model(seed=5, levels=8)
    blind_file = tmp_path / "blind.safetensors"
    save_weights(blind, blind_file, name="blind")
    grown = level_trigger_network(seed=6)
    load_initial_parameters(grown, blind_file)
    y = torch.randn(1, 12, 2, 2).round()
    with torch.no_grad():
        for level in range(8):
            for beta in (0.0, 1.0):
                args = (y, torch.tensor([beta]), torch.tensor([level]))
                assert torch.allclose(grown.synthesis(*args), blind.synthesis(*args), atol=2e-3)  # fp16 storage


def test_a_level_trigger_gives_each_level_its_own_protected_decode(tmp_path):
    model = level_trigger_network(seed=7)
    with torch.no_grad():
        model.g_s.condition.level_embedding.normal_()
    y = torch.randn(1, 12, 2, 2).round()
    with torch.no_grad():
        decodes = [model.g_s(y, torch.tensor([1.0]), torch.tensor([level])) for level in (0, 7)]
        assert not torch.allclose(*decodes)
        with pytest.raises(ValueError, match="level"):
            model.g_s(y, torch.tensor([1.0]))
    model.freeze_entropy_models()
    path = tmp_path / "grown.safetensors"
    save_weights(model, path, name="grown")
    loaded = load_weights_file(path, None, "cpu")
    assert loaded.arch.level_trigger
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    protected = [np.asarray(psic.decode(psic.encode(image, model=str(path), quality=q), model=str(path))) for q in (1, 8)]
    assert protected[0].shape == protected[1].shape == (64, 64, 3)


def test_only_a_gain_network_conditions_its_trigger_on_the_level():
    with pytest.raises(ValueError, match="gain network"):
        Architecture(8, 12, 16, level_trigger=True)


def branched_network(seed: int, branches: int = 2) -> ConditionalHyperprior:
    torch.manual_seed(seed)
    arch = Architecture(8, 12, 16, GAIN_ARCHITECTURE, 8, level_trigger=True, trigger_branches=branches)
    return ConditionalHyperprior(arch).eval()


@pytest.mark.parametrize("before, after", [(0, 2), (2, 3)])
def test_trigger_branches_grow_out_of_a_network_with_fewer_unchanged(tmp_path, before, after):
    from psic.train.checkpoint import load_initial_parameters

    plain = branched_network(seed=8, branches=before)
    with torch.no_grad():
        for gate in plain.g_s.condition.gates:  # trained branches, which the grown network must keep
            gate.weight.normal_()
    plain.freeze_entropy_models()
    plain_file = tmp_path / "plain.safetensors"
    save_weights(plain, plain_file, name="plain", half=False)
    grown = branched_network(seed=9, branches=after)
    load_initial_parameters(grown, plain_file)
    y = torch.randn(1, 12, 2, 2).round()
    with torch.no_grad():
        for beta in (0.0, 1.0):
            args = (y, torch.tensor([beta]), torch.tensor([4]))
            assert torch.equal(grown.synthesis(*args), plain.synthesis(*args))


def test_a_trigger_branch_changes_the_protected_decode_with_the_content(tmp_path):
    model = branched_network(seed=10)
    with torch.no_grad():
        for gate in model.g_s.condition.gates:
            gate.weight.normal_()
    without = level_trigger_network(seed=10)  # the same seed: the same parameters but the branches
    level = torch.tensor([3])
    with torch.no_grad():
        differences = []
        for y in (torch.randn(1, 12, 2, 2).round(), torch.randn(1, 12, 2, 2).round()):
            branched = model.g_s(y, torch.tensor([1.0]), level)
            plain = without.g_s(y, torch.tensor([1.0]), level)
            differences.append(branched - plain)
        assert not torch.allclose(differences[0], torch.zeros_like(differences[0]))
        assert not torch.allclose(differences[0], differences[1])  # not one fixed pattern: it follows y
    model.freeze_entropy_models()
    path = tmp_path / "branched.safetensors"
    save_weights(model, path, name="branched")
    loaded = load_weights_file(path, None, "cpu")
    assert loaded.arch.trigger_branches == 2
    image = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert psic.decode(psic.encode(image, model=str(path), quality=2), model=str(path)).size == (64, 64)


@pytest.mark.parametrize("branches", [-1, 4])
def test_trigger_branches_are_limited_to_the_feature_stages(branches):
    with pytest.raises(ValueError, match="trigger_branches"):
        Architecture(8, 12, 16, GAIN_ARCHITECTURE, 8, trigger_branches=branches)


@pytest.mark.parametrize("value", ["x", "12", ""])
def test_a_damaged_trigger_branch_count_is_refused(tmp_path, value):
    from safetensors.torch import load_file, save_file

    from psic.codec.weights import _read_metadata
    from psic.errors import ModelError

    model = branched_network(seed=11)
    model.freeze_entropy_models()
    path = tmp_path / "branched.safetensors"
    save_weights(model, path, name="branched")
    metadata = {**_read_metadata(path), "psic.trigger_branches": value}
    save_file(load_file(path), path, metadata=metadata)
    with pytest.raises(ModelError, match="architecture metadata"):
        load_weights_file(path, None, "cpu")
