"""hyperkit.encoding: Gaussian Fourier features and the attribute-wise normalisation before them."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import hyperkit
from hyperkit.encoding import ALL_FIELDS, FourierFeatures, Normalizer, field_ranges


def test_fourier_features_shapes_and_the_sin_cos_halves():
    features = FourierFeatures(in_fields=3, num_features=8, sigma=1.0, seed=0)
    assert features.B.shape == (3, 4)
    x = torch.randn(5, 7, 3)
    out = features(x)
    assert out.shape == (5, 7, 8)
    sin, cos = out[..., :4], out[..., 4:]
    assert torch.allclose(sin, torch.sin(2 * math.pi * (x @ features.B)), atol=1e-6)
    assert torch.allclose(sin ** 2 + cos ** 2, torch.ones(5, 7, 4))
    # x = 0 sits at phase 0: every sine is 0, every cosine 1
    assert torch.equal(features(torch.zeros(1, 3)), torch.tensor([[0.0] * 4 + [1.0] * 4]))


def test_fourier_features_are_fixed_by_the_seed_not_the_global_generator():
    torch.manual_seed(1)
    a = FourierFeatures(2, 6, seed=7)
    torch.manual_seed(2)
    b = FourierFeatures(2, 6, seed=7)
    assert torch.equal(a.B, b.B)
    assert torch.equal(a.B, torch.randn(2, 3, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(a.B, FourierFeatures(2, 6, seed=8).B)
    # a buffer, not a parameter: saved with the generator, never trained
    assert "B" in a.state_dict() and not list(a.parameters())


def test_sigma_scales_the_frequencies():
    unit, wide = FourierFeatures(4, 4096, sigma=1.0, seed=0), FourierFeatures(4, 4096, sigma=3.0, seed=0)
    assert torch.allclose(wide.B, 3.0 * unit.B)
    assert wide.B.std().item() == pytest.approx(3.0, rel=0.02)  # 8192 draws of N(0, 3²)
    assert wide.B.mean().item() == pytest.approx(0.0, abs=0.07)
    # the same input maps to sigma times the phase: features(x; σ) = features(σx; 1)
    x = torch.tensor([[0.01, -0.02, 0.03, 0.005]])
    assert torch.allclose(wide(x), unit(3.0 * x), atol=1e-5)


def test_fourier_features_need_an_even_size():
    with pytest.raises(ValueError, match="num_features must be even, got 5"):
        FourierFeatures(2, 5)


def test_field_ranges_of_a_small_target():
    # mlp_tiny: Linear(4, 16), ReLU, Linear(16, 3); sizes are log-scaled, indices are not
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    ranges = field_ranges([spec])
    assert set(ranges) == set(ALL_FIELDS)
    assert ranges["row"] == (0.0, 15.0) and ranges["col"] == (0.0, 15.0)
    assert ranges["in_size"] == pytest.approx((math.log1p(4), math.log1p(16)))
    assert ranges["out_size"] == pytest.approx((math.log1p(3), math.log1p(16)))
    assert ranges["layer"] == (0.0, 1.0)
    assert ranges["role"] == (0.0, 996.0)  # hashed ids: a fixed range whatever the specs
    assert ranges["k0"] == (0.0, 0.0)  # no kernels in an MLP


def test_normaliser_maps_each_range_to_plus_minus_its_multiplier():
    ranges = {field: (0.0, 0.0) for field in ALL_FIELDS}
    ranges.update(row=(0.0, 15.0), depth=(0.0, 1.0), in_size=(math.log1p(4), math.log1p(16)))
    normalise = Normalizer(ranges)
    # integer indices: 16 levels → multiplier 16 / 4 = 4, so neighbouring rows are 2·4/15 apart
    rows = normalise(torch.tensor([[0.0], [15.0], [7.5]]), ["row"])
    assert torch.allclose(rows.squeeze(1), torch.tensor([-4.0, 4.0, 0.0]))
    # continuous and log fields keep multiplier 1; log fields are log1p'd first
    assert torch.allclose(normalise(torch.tensor([[0.0, 4.0], [1.0, 16.0]]), ["depth", "in_size"]),
                          torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    # a field with an empty range is only shifted
    assert normalise(torch.tensor([[0.0]]), ["k0"]).item() == 0.0
    assert normalise.ranges()["row"] == (0.0, 15.0)


def test_normaliser_warns_once_per_field_out_of_its_range():
    ranges = {field: (0.0, 0.0) for field in ALL_FIELDS} | {"row": (0.0, 15.0)}
    normalise = Normalizer(ranges)
    with pytest.warns(UserWarning, match="descriptor field 'row' has values in \\[0, 31\\] outside"):
        out = normalise(torch.tensor([[0.0], [31.0]]), ["row"])
    assert out.squeeze(1).tolist() == pytest.approx([-4.0, -4.0 + 8.0 * 31 / 15])  # still encoded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalise(torch.tensor([[40.0]]), ["row"])  # already warned about 'row'
