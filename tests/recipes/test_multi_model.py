"""The multi_model recipe through the real CLI on its debug config."""

from __future__ import annotations

import pytest

from hyperkit.config import ConfigError
from hyperkit.recipes import load_recipe
from test_recipes import train_through_cli  # tests/recipes is on sys.path


@pytest.mark.parametrize("shared", ["false", "true"])
def test_debug_family_trains_and_reports_seen_and_held_out_members(shared, tmp_path):
    scalars = train_through_cli("multi_model/debug", tmp_path / "run", "train.lr=1e-2",
                                f"generator.shared_trunk={shared}")
    for group in ("seen", "interpolation", "extrapolation"):
        assert 0 <= scalars[f"eval/{group}_accuracy"][-1][1] <= 1
    each = [values[-1][1] for tag, values in scalars.items() if tag.startswith("eval/interpolation_accuracy/")]
    assert len(each) == 2 and abs(sum(each) / 2 - scalars["eval/interpolation_accuracy"][-1][1]) < 1e-6


def test_unknown_family_is_refused(tmp_path):
    recipe = load_recipe("multi_model/debug", [f"out={tmp_path}", "family=resnet_family"])
    with pytest.raises(ConfigError, match="unknown family 'resnet_family'"):
        recipe.setup(None)


def test_held_out_members_follow_split_seed_not_train_seed(tmp_path):
    def held_out(*overrides):
        recipe = load_recipe("multi_model/debug", [f"out={tmp_path}", *overrides])
        recipe.setup(None)
        return [m.name for m in recipe.groups["interpolation"]]

    first = held_out("train.seed=0")
    assert first and held_out("train.seed=1") == first
    assert any(held_out(f"split_seed={seed}") != first for seed in range(1, 6))
    spread = held_out("held_out=3", "stratify=[depth]")   # the MLP family: depths 1, 2, 3
    assert sorted(name.split("depth=")[1][0] for name in spread) == ["1", "2", "3"]
    with pytest.raises(ConfigError, match="stratify names \\['heads'\\]"):
        held_out("stratify=[heads]")


def test_label_smoothing_enters_the_loss_and_is_validated(tmp_path):
    import torch

    from hyperkit.engine.distributed import DistributedInfo

    info = DistributedInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))

    def first_loss(smoothing):
        torch.manual_seed(0)
        recipe = load_recipe("multi_model/debug", [f"out={tmp_path}", f"label_smoothing={smoothing}"])
        return recipe.loss(recipe.setup(torch.device("cpu")), 0, info)[0].item()

    plain, smoothed = first_loss(0.0), first_loss(0.3)
    assert torch.isfinite(torch.tensor(smoothed)) and abs(smoothed - plain) > 1e-4
    with pytest.raises(ConfigError, match=r"label_smoothing must be in \[0, 1\), got 1.5"):
        first_loss(1.5)


@pytest.mark.parametrize("config", ["multi_model/debug", "multi_task/debug", "recursive/debug"])
def test_target_weight_decay_reaches_the_generator_gradient_and_is_validated(config, tmp_path):
    import torch

    from hyperkit.engine.distributed import DistributedInfo

    info = DistributedInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))

    def gradient(decay):
        torch.manual_seed(0)
        recipe = load_recipe(config, [f"out={tmp_path}", f"target_weight_decay={decay}"])
        module = recipe.setup(torch.device("cpu"))
        recipe.loss(module, 0, info)[0].backward()
        return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])

    plain, decayed = gradient(0.0), gradient(0.5)
    assert plain.shape == decayed.shape and not torch.allclose(plain, decayed)
    with pytest.raises(ConfigError, match=r"target_weight_decay must be >= 0, got -1"):
        gradient(-1.0)
