"""The multi_task recipe through the real CLI on its debug config, and its config checks."""

from __future__ import annotations

import math

import pytest

from hyperkit.cli import main
from hyperkit.config import ConfigError
from hyperkit.engine import read_scalars
from hyperkit.recipes import load_recipe


def test_debug_tasks_train_with_one_generator_and_report_each_task(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "multi_task/debug", f"out={out}", "train.lr=1e-2"]) == 0
    scalars = read_scalars(out)
    losses = [v for _, v in scalars["train/loss"]]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    for task in ("digits_mlp", "sbm_gcn", "sequence_transformer"):
        assert 0 <= scalars[f"eval/{task}_accuracy"][-1][1] <= 1
        assert f"train/{task}_accuracy" in scalars


@pytest.mark.parametrize("override, message", [
    ("tasks=[]", "at least one task"),
    ("tasks=[{name: a, data: {name: digits}, target: {name: mlp_digits}}, "
     "{name: a, data: {name: digits}, target: {name: cnn_digits}}]", "names must be unique"),
    ("tasks=[{name: a, data: {name: digits}, target: {name: gcn_small}}]", "cannot be fed image data"),
])
def test_bad_task_lists_are_refused(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_recipe("multi_task/debug", [f"out={tmp_path}", override]).setup(None)
