"""The shared training loop with a toy recipe: non-finite steps, and 2-process DDP vs 1 process."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.mark.parametrize("name", ["direct/digits_mlp-debug", "uhn/digits_mlp-debug"])
def test_two_processes_match_one_with_the_same_global_batch(name, tmp_path):
    common = ["train.steps=12", "train.log_every=1", "train.batch_size=64", "train.threads=1"]
    if name.startswith("uhn"):
        common.append("init.steps=10")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for procs in (1, 2):
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
                   "--standalone", "-m", "hyperkit", "run", name, f"out={tmp_path / str(procs)}", *common]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = (read_scalars(tmp_path / str(p))["train/loss"] for p in (1, 2))
    assert [s for s, _ in one] == [s for s, _ in two] == list(range(1, 13))
    # The all-reduced gradient sums in another order than one process's batch, and Adam's
    # normalised (fused) update carries that rounding along: 12 steps agree to ~5e-4.
    assert [v for _, v in one] == pytest.approx([v for _, v in two], rel=2e-3)
    # rank 0 alone wrote the run folder
    assert len(list((tmp_path / "2").glob("events.out.tfevents.*"))) == 1


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
