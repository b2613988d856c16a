"""The continual recipe: the output regulariser, per-task evaluation and forgetting, exact resume
across a task boundary, config errors and the export of every task's network."""

from __future__ import annotations

import shutil

import pytest
import torch

from hyperkit import load_exported, load_run
from hyperkit.config import ConfigError
from hyperkit.engine import load_checkpoint, read_scalars
from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe
from hyperkit.recipes.runs import export_run

QUIET = ["train.threads=1", "train.progress=false"]


def run(config: str, out, *overrides: str):
    recipe = load_recipe(config, [f"out={out}", *QUIET, *overrides])
    return recipe, train(recipe)


def drift(out, beta: float) -> float:
    """Relative distance of task 0's generated weights after task 1 from those stored when task 1 began."""
    run("continual/split_digits-debug", out, "train.steps=40", "init.steps=0", f"beta={beta}")
    module = load_run(out).module
    with torch.no_grad():
        now = module.flat([0])[0]
    stored = module.stored[0]
    return float((now - stored).norm() / stored.norm())


def test_the_regulariser_keeps_earlier_tasks_weights(tmp_path):
    free, held = drift(tmp_path / "free", 0.0), drift(tmp_path / "held", 10.0)
    # measured: 1.68 without it (task 1's training moves task 0's weights), 0.024 with it
    assert free > 0.5
    assert held < 0.1 and held < free / 20


def test_each_task_is_evaluated_when_it_ends_and_forgetting_is_its_drop_from_its_best(tmp_path):
    out = tmp_path / "run"
    _, result = run("continual/split_digits-debug", out, "train.steps=60", "init.steps=0")
    scalars = read_scalars(out)
    # task k is evaluated from the first evaluation after it began: every 10 steps, 20 per task
    assert [s for s, _ in scalars["eval/task0_accuracy"]] == [10, 20, 30, 40, 50, 60]
    assert [s for s, _ in scalars["eval/task2_accuracy"]] == [50, 60]
    assert "eval/task3_accuracy" not in scalars
    for k in range(3):
        history = [v for _, v in scalars[f"eval/task{k}_accuracy"]]
        assert result[f"eval/task{k}_forgetting"] == pytest.approx(max(history) - history[-1])
    assert result["eval/accuracy"] == pytest.approx(sum(result[f"eval/task{k}_accuracy"] for k in range(3)) / 3)
    # the mean over the tasks before the current one (task 2's own training is no forgetting)
    assert result["eval/forgetting"] == pytest.approx((result["eval/task0_forgetting"]
                                                       + result["eval/task1_forgetting"]) / 2)
    for key in ("train/task_loss", "train/regulariser"):
        assert key in scalars
    assert scalars["train/regulariser"][0][1] == 0  # nothing to hold on the first task
    best = load_run(out).module.best
    assert best[:3].min() >= 0 and best[3:].tolist() == [-1.0, -1.0]


@pytest.mark.parametrize("killed_at", [20, 30])  # the first step of task 1; the middle of task 1
def test_resume_across_a_task_boundary_ends_as_an_uninterrupted_run(killed_at, tmp_path):
    args = ["train.steps=60", "train.checkpoint_every=10", "train.keep_checkpoints=10", "init.steps=5"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    run("continual/split_digits-debug", full, *args)
    shutil.copytree(full, killed)
    for step in range(killed_at + 10, 70, 10):
        (killed / "checkpoints" / f"step_{step:08d}.pt").unlink()
    recipe = load_recipe("continual/split_digits-debug", [f"out={killed}", *QUIET, *args])
    assert train(recipe, resume=True)["step"] == 60
    expected, resumed = (load_checkpoint(out / "checkpoints" / "step_00000060.pt")["module"] for out in (full, killed))
    assert expected.keys() == resumed.keys() and {"stored", "best", "seen"} <= expected.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


@pytest.mark.parametrize("method", ["finetune", "joint"])
def test_baselines_run_through_the_same_config(method, tmp_path):
    _, result = run("continual/split_digits-debug", tmp_path / "run", f"method={method}", "train.steps=40",
                    "train.lr=1e-2")
    assert result["eval/accuracy"] > 0.9
    assert ("eval/task4_accuracy" in result) == (method == "joint")  # joint sees every task from the start


def test_every_tasks_network_is_exported_with_its_permutation(tmp_path):
    out = tmp_path / "run"
    recipe, result = run("continual/permuted_digits-debug", out, "init.steps=0", "train.lr=1e-2")
    exported = load_exported(export_run(out, tmp_path / "model.pt"))
    assert list(exported.targets) == ["task0", "task1", "task2"]
    assert exported.inputs["task0"]["permutation"] == list(range(64))
    assert sorted(exported.inputs["task1"]["permutation"]) == list(range(64))
    assert exported.inputs["task1"]["permutation"] != exported.inputs["task2"]["permutation"]
    images = recipe.tasks[0].test_x  # unpermuted: task 0 is the identity
    labels = recipe.tasks[0].test_y
    for k in range(3):
        permuted = images.flatten(1)[:, exported.inputs[f"task{k}"]["permutation"]].view_as(images)
        with torch.no_grad():
            accuracy = (exported.targets[f"task{k}"](permuted).argmax(-1) == labels).float().mean()
        assert accuracy.item() == pytest.approx(result[f"eval/task{k}_accuracy"], abs=1e-6)


def test_a_finetuned_split_network_exports_one_head_per_task(tmp_path):
    out = tmp_path / "run"
    recipe, _ = run("continual/split_digits-debug", out, "method=finetune", "train.steps=40")
    loaded = load_run(out)
    x = recipe.tasks[1].test_x[:8]
    with torch.no_grad():
        expected = loaded.module([1], [(x,)])[0]
        torch.testing.assert_close(loaded.targets["task1"](x), expected)
    assert loaded.targets["task1"].net[-1].out_features == 2


def test_partial_generation_generates_the_head_and_trains_the_trunk(tmp_path):
    recipe, result = run("continual/split_digits-debug", tmp_path / "run", "generate=net.2.*", "train.steps=20",
                         "init.steps=0")
    module = load_run(tmp_path / "run").module
    assert list(module.spec.params) == ["net.2.weight", "net.2.bias"]
    assert module.target.net[0].weight.requires_grad and not module.target.net[2].weight.requires_grad
    assert result["eval/task0_accuracy"] > 0.5


@pytest.mark.parametrize("overrides, message", [
    (["train.eval_every=7"], r"steps_per_task \(20\) must be a multiple of train.eval_every \(7"),
    (["train.eval_every=0"], r"must be a multiple of train.eval_every \(0, which must be positive\)"),
    (["train.steps=101"], r"steps_per_task × tasks.num_tasks \(20 × 5\) is less than train.steps \(101\)"),
    (["train.ema_decay=0.9"], r"ema_decay: null"),
    (["beta=-1"], r"beta must be >= 0"),
    (["method=ewc"], r"method"),
    (["tasks.kind=rotated"], r"tasks.kind"),
])
def test_bad_configs_are_refused_when_read(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_recipe("continual/split_digits-debug", [f"out={tmp_path}", *overrides])


@pytest.mark.parametrize("overrides, message", [
    (["tasks.num_tasks=6"], r"6 tasks of 2 classes need 12 classes; the data has 10"),
    (["generate=head.*"], r"generate: .*net\.0\.weight"),
    (["data={name: sbm}"], r"continual splits or permutes images"),
])
def test_bad_inputs_are_refused_at_setup(overrides, message, tmp_path):
    recipe = load_recipe("continual/split_digits-debug", [f"out={tmp_path}", "train.steps=20", *overrides])
    with pytest.raises(ConfigError, match=message):
        recipe.setup(torch.device("cpu"))
