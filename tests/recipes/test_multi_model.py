"""The multi_model recipe through the real CLI on its debug config."""

from __future__ import annotations

import math

import pytest

from hyperkit.cli import main
from hyperkit.config import ConfigError
from hyperkit.engine import read_scalars
from hyperkit.recipes import load_recipe


def test_debug_family_trains_and_reports_seen_and_held_out_members(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "multi_model/debug", f"out={out}", "train.lr=1e-2"]) == 0
    scalars = read_scalars(out)
    losses = [v for _, v in scalars["train/loss"]]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    for group in ("seen", "interpolation", "extrapolation"):
        assert 0 <= scalars[f"eval/{group}_accuracy"][-1][1] <= 1


def test_unknown_family_is_refused(tmp_path):
    recipe = load_recipe("multi_model/debug", [f"out={tmp_path}", "family=resnet_family"])
    with pytest.raises(ConfigError, match="unknown family 'resnet_family'"):
        recipe.setup(None)
