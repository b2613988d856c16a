"""The multi_task recipe through the real CLI on its debug config, and its config checks."""

from __future__ import annotations

import pytest

from hyperkit.config import ConfigError
from hyperkit.recipes import load_recipe
from test_recipes import train_through_cli  # tests/recipes is on sys.path


def test_debug_tasks_train_with_one_generator_and_report_each_task(tmp_path):
    scalars = train_through_cli("multi_task/debug", tmp_path / "run", "train.lr=1e-2")
    for task in ("digits_mlp", "sbm_gcn", "sequence_transformer"):
        assert 0 <= scalars[f"eval/{task}_accuracy"][-1][1] <= 1
        assert f"train/{task}_accuracy" in scalars


@pytest.mark.parametrize("override, message", [
    ("tasks=[]", "at least one task"),
    ("tasks=[{name: a, data: {name: digits}, target: {name: mlp_digits}}, "
     "{name: a, data: {name: digits}, target: {name: cnn_digits}}]", "names must be unique"),
    ("tasks=[{name: a, data: {name: digits}, target: {name: gcn_small}}]", "cannot be fed image data"),
    ("tasks=[{name: a, data: {name: digits}, target: {name: mlp_digits}, label_smoothing: 1.0}]",
     r"tasks\[0\].label_smoothing must be in \[0, 1\)"),
])
def test_bad_task_lists_are_refused(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_recipe("multi_task/debug", [f"out={tmp_path}", override]).setup(None)


def test_each_task_has_its_own_label_smoothing(tmp_path):
    import torch

    from hyperkit.engine.distributed import DistributedInfo

    info = DistributedInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))

    def first_loss(smoothing):
        task = f"{{name: a, data: {{name: digits}}, target: {{name: mlp_digits, hidden: [8]}}, label_smoothing: {smoothing}}}"
        recipe = load_recipe("multi_task/debug", [f"out={tmp_path}", f"tasks=[{task}]"])
        return recipe.loss(recipe.setup(torch.device("cpu")), 0, info)[0].item()

    assert abs(first_loss(0.3) - first_loss(0.0)) > 1e-4
