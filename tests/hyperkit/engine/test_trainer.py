"""The shared training loop with a toy recipe: non-finite steps and the moving average (2-process
DDP against 1 process, on every recipe: tests/recipes/test_torchrun.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
import torch.nn as nn

from hyperkit.engine import read_scalars
from hyperkit.engine.trainer import NonFiniteLoss, Recipe, TrainConfig, train


@dataclass
class ToyConfig:
    out: str
    nan_steps: tuple[int, ...] = ()
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=50, lr=0.2, progress=False))


class Toy(Recipe):
    """Fit a scalar to 1; the loss is NaN at ``nan_steps``."""

    name = "toy"
    config_class = ToyConfig

    def setup(self, device):
        return nn.Linear(1, 1, bias=False)

    def loss(self, module, step, info):
        loss = (module(torch.ones(1, 1)) - 1).pow(2).mean()
        return (loss * float("nan") if step in self.config.nan_steps else loss), {}

    def evaluate(self, module):
        return {"weight": module.weight.item()}


def test_nonfinite_steps_are_skipped_and_counted(tmp_path):
    result = train(Toy(ToyConfig(out=str(tmp_path), nan_steps=(2, 5))))
    assert result["skipped_steps"] == 2 and result["step"] == 50
    assert read_scalars(tmp_path)["train/skipped_steps"] == [(3, 1.0), (6, 2.0)]
    assert abs(result["eval/weight"] - 1) < 0.1  # the other steps still trained


def test_too_many_nonfinite_steps_abort_with_advice(tmp_path):
    config = ToyConfig(out=str(tmp_path), nan_steps=tuple(range(10)))
    config.train.max_nonfinite = 3
    with pytest.raises(NonFiniteLoss, match=r"at 4 steps .*lower train\.lr"):
        train(Toy(config))
    assert not (tmp_path / "checkpoints").exists()


def test_ema_weights_are_evaluated_checkpointed_and_resumed(tmp_path):
    from hyperkit.engine import load_checkpoint

    config = ToyConfig(out=str(tmp_path / "full"))
    config.train.ema_decay, config.train.checkpoint_every = 0.9, 25
    result = train(Toy(config))
    state = load_checkpoint(tmp_path / "full" / "checkpoints" / "step_00000050.pt")
    assert result["eval/weight"] == pytest.approx(state["ema"]["module.weight"].item())
    assert state["ema"]["module.weight"].item() != pytest.approx(state["module"]["weight"].item())

    import shutil
    shutil.copytree(tmp_path / "full", tmp_path / "killed")
    (tmp_path / "killed" / "checkpoints" / "step_00000050.pt").unlink()
    config.out = str(tmp_path / "killed")
    assert train(Toy(config), resume=True)["eval/weight"] == result["eval/weight"]
