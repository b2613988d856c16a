"""Architecture families: members, de-duplication, held-out splits, every member builds."""

from __future__ import annotations

import numpy as np
import pytest

import hyperkit
from hyperkit.families import FAMILIES, Family

SIZES = {"mlp_digits": dict(in_features=64, num_classes=10), "cnn_digits": dict(num_classes=10),
         "transformer_tiny": dict(vocab_size=64, num_classes=4)}


@pytest.mark.parametrize("name", FAMILIES.names())
def test_split_partitions_the_family_and_extrapolation_lies_outside(name):
    family = FAMILIES.get(name)()
    members = family.members()
    split = family.split(num_held_out=3, seed=1)
    assert sorted(m.name for m in split.train + split.interpolation) == sorted(m.name for m in members)
    assert len(split.interpolation) == 3 and split.extrapolation
    for member in split.extrapolation:
        assert any(value in family.extrapolation.get(key, ()) for key, value in member.choices)
    for member in members + split.extrapolation:  # every member builds and can be described
        spec = hyperkit.describe(member.build(**SIZES[member.target]))
        assert spec.num_weights > 0
    assert family.split(3, seed=1).interpolation == split.interpolation  # fixed for a seed


def test_identical_networks_from_different_choices_are_kept_once():
    family = Family("mlp_digits", {"depth": [1, 2], "width": [32, 32]}, lambda c: {"hidden": [c["width"]] * c["depth"]})
    assert [m.name for m in family.members()] == ["mlp_digits(depth=1, width=32)", "mlp_digits(depth=2, width=32)"]
    rng = np.random.default_rng(0)
    assert {family.sample(rng).name for _ in range(20)} == {m.name for m in family.members()}


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError, match="inside the training choices"):
        Family("mlp_digits", {"depth": [1, 2]}, extrapolation={"depth": [2, 3]})
    with pytest.raises(ValueError, match="not one of the family's choices"):
        Family("mlp_digits", {"depth": [1, 2]}, extrapolation={"width": [8]})
    with pytest.raises(ValueError, match="num_held_out"):
        FAMILIES.get("mlp_digits_family")().split(num_held_out=100)


def test_stratified_split_spreads_held_out_members_over_the_named_choices():
    family = FAMILIES.get("cnn_digits_family")()  # 100 members: 2 depths x 25 widths x 2 kernels
    for seed in range(5):
        split = family.split(num_held_out=6, seed=seed, stratify=["depth", "kernel_size"])
        cells = [(dict(m.choices)["depth"], dict(m.choices)["kernel_size"]) for m in split.interpolation]
        counts = sorted(cells.count(cell) for cell in {(d, k) for d in (1, 2) for k in (3, 5)})
        assert counts == [1, 1, 2, 2] and len(split.train) == 100 - 6
        assert family.split(6, seed=seed, stratify=["depth", "kernel_size"]).interpolation == split.interpolation
    # Unstratified, six of 100 members can fall in one cell; the strata are what keep them apart.
    assert family.split(6, seed=0).interpolation != family.split(6, seed=0, stratify=["depth"]).interpolation
    with pytest.raises(ValueError, match="stratify names \\['width'\\]"):
        family.split(2, stratify=["width"])
