"""The recursive recipe through the real CLI on its debug config."""

from __future__ import annotations

import pytest

from hyperkit.config import ConfigError
from hyperkit.recipes import load_recipe
from test_recipes import train_through_cli  # tests/recipes is on sys.path


def test_debug_chain_trains_and_logs_every_level(tmp_path):
    scalars = train_through_cli("recursive/debug", tmp_path / "run", "train.lr=3e-3")
    for level in (1, 2):  # H1, then the task network
        assert len(scalars[f"init/level{level}/loss"]) == 20
        assert f"eval/level{level}_max_stat_error" in scalars


def test_depth_scales_the_learning_rate_and_bad_depth_is_refused(tmp_path):
    recipe = load_recipe("recursive/debug", [f"out={tmp_path}", "depth=2", "lr_depth_scale=0.5"])
    assert recipe.lr_multiplier() == 0.25
    with pytest.raises(ConfigError, match="depth must be >= 0"):
        load_recipe("recursive/debug", [f"out={tmp_path}", "depth=-1"]).build_module(None, None)
