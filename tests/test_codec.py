"""The network and its deterministic entropy coding."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_model

from psic.codec import coding
from psic.codec.cltg import ConditionTrigger, fourier_embedding
from psic.codec.fixed_point import index_crc
from psic.codec.network import scale_table
from psic.errors import DeterminismError, InvalidConditionError


@pytest.fixture(scope="module")
def model():
    return build_tiny_model()


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(3)
    return torch.rand(1, 3, 128, 192)


def float_indexes(model, z_symbols: torch.Tensor) -> torch.Tensor:
    """CompressAI's float path: h_s in float32, then the scale-table rule."""
    medians = model.entropy_bottleneck.quantiles[:, 0, 1].view(1, -1, 1, 1)
    scales = model.h_s(z_symbols.float() + medians)
    return model.gaussian_conditional.build_indexes(scales)


def z_symbols_of(model, image):
    with torch.no_grad():
        z = model.h_a(torch.abs(model.g_a(image)))
        medians = model.entropy_bottleneck.quantiles[:, 0, 1].view(1, -1, 1, 1)
        return torch.round(z - medians).to(torch.int32)


def test_fourier_embedding_matches_reference_values():
    embedding = fourier_embedding(torch.tensor([0.0, 1.0]))
    assert embedding.shape == (2, 21)
    assert embedding[0].tolist() == [0.0] + [0.0, 1.0] * 10
    expected_start = [1.0, 0.841471, 0.540302, 0.909297, -0.416147, -0.756802]
    assert embedding[1, :6].tolist() == pytest.approx(expected_start, abs=1e-6)
    assert embedding[1, -1].item() == pytest.approx(-0.996833, abs=1e-6)


@pytest.mark.parametrize("beta", [0.5, 2.0, -1.0])
def test_untrained_conditions_are_refused(model, beta):
    y = torch.zeros(1, 12, 2, 2)
    with pytest.raises(InvalidConditionError):
        model.g_s(y, torch.tensor([beta]))


def test_latent_round_trips_exactly(model, image):
    streams = coding.compress(model, image)
    latent = coding.decode_latent(model, streams, 128, 192)
    with torch.no_grad():
        expected = torch.round(model.g_a(image)).to(torch.int32)
    assert torch.equal(latent, expected)


def test_protected_and_full_differ_in_pixels_not_shape(model, image):
    streams = coding.compress(model, image)
    latent = coding.decode_latent(model, streams, 128, 192)
    full = coding.synthesize(model, latent, 0.0, 100, 150)
    protected = coding.synthesize(model, latent, 1.0, 100, 150)
    assert full.shape == protected.shape == (1, 3, 100, 150)
    assert (full - protected).abs().max() > 1e-3


def test_encoder_and_decoder_compute_identical_indexes(model, image):
    streams = coding.compress(model, image)
    symbols = z_symbols_of(model, image)
    assert index_crc(model.integer_h_s(symbols)[0]) == streams.index_crc


def test_indexes_do_not_depend_on_thread_count(model, image):
    symbols = z_symbols_of(model, image)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model.integer_h_s(symbols)
        torch.set_num_threads(2)
        two = model.integer_h_s(symbols)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


def test_trigger_biases_and_gates_do_not_depend_on_thread_count():
    """Every decoded pixel adds these biases; torch's matrix product sums by thread count (3 and 6 differ)."""
    torch.manual_seed(0)
    condition = ConditionTrigger([128, 128, 128, 3], hidden=128, levels=8, branch_stages=2).eval()
    with torch.no_grad():
        condition.level_embedding.normal_()
        for gate in condition.gates:
            gate.weight.normal_()
    previous = torch.get_num_threads()
    try:
        biases = []
        for count in (1, 2, 3, 6):
            torch.set_num_threads(count)
            with torch.no_grad():  # one image at a time, as the decoder asks (a batch takes another path)
                biases.append([condition(torch.tensor([beta]), torch.tensor([7])) for beta in (0.0, 1.0)])
    finally:
        torch.set_num_threads(previous)
    tensors = [[t for mode in run for stage in mode for t in stage if t is not None] for run in biases]
    assert len(tensors[0]) == 2 * (4 + 2)
    for other in tensors[1:]:
        assert all(torch.equal(a, b) for a, b in zip(tensors[0], other))


def test_integer_path_tracks_float_path(model, image):
    symbols = z_symbols_of(model, image)
    agreement = (model.integer_h_s(symbols) == float_indexes(model, symbols)).float().mean().item()
    assert agreement > 0.99


def test_perturbed_float_layers_still_decode_the_stream_exactly(image):
    encoder = build_tiny_model()
    streams = coding.compress(encoder, image)
    decoder = build_tiny_model()
    torch.manual_seed(5)
    with torch.no_grad():
        for module in (decoder.h_s, decoder.g_s):
            for parameter in module.parameters():
                parameter.mul_(1 + 1e-2 * torch.randn_like(parameter))
    symbols = z_symbols_of(encoder, image)
    # The perturbation is large enough to move float-path indexes across table boundaries...
    assert not torch.equal(float_indexes(encoder, symbols), float_indexes(decoder, symbols))
    # ...and the integer path still decodes the stream bit-exactly.
    latent = coding.decode_latent(decoder, streams, 128, 192)
    with torch.no_grad():
        assert torch.equal(latent, torch.round(encoder.g_a(image)).to(torch.int32))


def test_wrong_index_crc_raises_determinism_error(model, image):
    streams = coding.compress(model, image)
    tampered = coding.Bitstreams(streams.z, streams.y, streams.index_crc ^ 1)
    with pytest.raises(DeterminismError):
        coding.decode_latent(model, tampered, 128, 192)


def test_scale_table_is_compressai_ladder():
    table = scale_table()
    assert len(table) == 64
    assert table[0].item() == pytest.approx(0.11)
    assert table[-1].item() == pytest.approx(256.0, rel=1e-5)


def test_z_grid_follows_from_image_size():
    assert coding.z_grid(1, 1) == (1, 1)
    assert coding.z_grid(64, 65) == (1, 2)
    assert coding.z_grid(512, 768) == (8, 12)
    assert coding.z_grid(100, 150) == (math.ceil(100 / 64), math.ceil(150 / 64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_encode_decodes_on_cpu(image):
    gpu = build_tiny_model().cuda()
    streams = coding.compress(gpu, image.cuda())
    cpu = build_tiny_model()
    latent = coding.decode_latent(cpu, streams, 128, 192)
    with torch.no_grad():
        assert torch.equal(latent, torch.round(gpu.g_a(image.cuda())).to(torch.int32).cpu())
