"""The recursive recipe through the real CLI on its debug config."""

from __future__ import annotations

import pytest
import torch

from hyperkit.config import ConfigError
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.initialization import statistics_loss
from hyperkit.recipes import load_recipe
from test_recipes import train_through_cli  # tests/recipes is on sys.path


def test_debug_chain_trains_and_logs_every_level(tmp_path):
    scalars = train_through_cli("recursive/debug", tmp_path / "run", "train.lr=3e-3")
    for level in (1, 2):  # H1, then the task network
        assert len(scalars[f"init/level{level}/loss"]) == 20
        assert f"eval/level{level}_max_stat_error" in scalars
    assert "train/level1_stats" in scalars and "train/level2_stats" not in scalars  # H1 only


def test_stats_weight_adds_the_intermediate_levels_statistics_loss(tmp_path):
    info = DistributedInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    recipe = load_recipe("recursive/debug", [f"out={tmp_path}", "depth=2"])
    module = recipe.setup(info.device)
    losses = []
    for weight in (0.0, 0.5):
        recipe.config.stats_weight = weight
        loss, metrics = recipe.loss(module, 3, info)
        losses.append(loss)
    levels = module.chain.generate()
    drift = [statistics_loss(values, spec) for values, spec in zip(levels[:2], module.chain.specs)]  # H1, H2
    assert [metrics[f"level{k}_stats"] for k in (1, 2)] == pytest.approx([d.item() for d in drift])
    assert losses[1].item() == pytest.approx(losses[0].item() + 0.5 * sum(d.item() for d in drift), rel=1e-5)
    trained = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(losses[1] - losses[0], trained, allow_unused=True)  # the term alone
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with pytest.raises(ConfigError, match="stats_weight must be >= 0"):
        load_recipe("recursive/debug", [f"out={tmp_path}", "stats_weight=-1"]).setup(info.device)


def test_depth_scales_the_learning_rate_and_bad_depth_is_refused(tmp_path):
    recipe = load_recipe("recursive/debug", [f"out={tmp_path}", "depth=2", "lr_depth_scale=0.5"])
    assert recipe.lr_multiplier() == 0.25
    with pytest.raises(ConfigError, match="depth must be >= 0"):
        load_recipe("recursive/debug", [f"out={tmp_path}", "depth=-1"]).build_module(None, None)
