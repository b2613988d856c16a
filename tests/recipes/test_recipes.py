"""The real CLI on every packaged debug config, TensorBoard contents, resume, and bad input."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from hyperkit.cli import main
from hyperkit.config import ConfigError, to_yaml
from hyperkit.engine import load_checkpoint, read_hparams, read_histogram_tags, read_scalars, read_text
from hyperkit.engine.trainer import train
from hyperkit.recipes import config_path, list_configs, load_recipe

DEBUG = [name for name in list_configs() if name.endswith("-debug")]


def test_every_recipe_has_debug_configs_for_every_task():
    for recipe in ("uhn", "direct"):
        for task in ("digits_mlp", "digits_cnn", "gcn", "gat", "transformer"):
            assert f"{recipe}/{task}" in list_configs(recipe)
            assert f"{recipe}/{task}-debug" in list_configs(recipe)


def train_through_cli(config: str, out, *overrides: str) -> dict:
    """``hyperkit run config out=out overrides…``; checks it succeeds with a finite, falling loss and
    returns the logged scalars (other recipe tests import this: tests/recipes is on sys.path)."""
    assert main(["run", config, f"out={out}", *overrides]) == 0
    scalars = read_scalars(out)
    losses = [value for _, value in scalars["train/loss"]]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    return scalars


@pytest.mark.parametrize("name", DEBUG)
def test_debug_config_runs_through_the_cli(name, tmp_path, capsys):
    out = tmp_path / "run"
    extra = ["init.steps=5"] if name.startswith("uhn") else []
    scalars = train_through_cli(name, out, "train.steps=12", "train.checkpoint_every=6", "train.log_every=3",
                                "train.warmup_steps=1", *extra)
    assert "eval/accuracy" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000006.pt", "step_00000012.pt"]
    assert (out / "config.yaml").is_file()
    assert len(scalars["train/loss"]) == 4
    accuracy = scalars["eval/accuracy"]
    assert accuracy[-1][0] == 12 and 0.0 <= accuracy[-1][1] <= 1.0


def test_validate_and_ls(tmp_path, capsys):
    assert main(["ls"]) == 0
    listing = capsys.readouterr().out
    assert "uhn:" in listing and "  direct/gat-debug" in listing
    assert main(["validate", "uhn/gcn-debug", f"out={tmp_path / 'v'}"]) == 0
    assert "# ok: recipe uhn" in capsys.readouterr().out
    assert not (tmp_path / "v" / "checkpoints").exists()


def test_tensorboard_holds_what_a_run_logged(tmp_path):
    out = tmp_path / "run"
    recipe = load_recipe("uhn/digits_mlp-debug", [f"out={out}", "train.steps=20", "train.warmup_steps=4",
                                                  "train.log_every=5", "train.eval_every=10", "init.steps=30"])
    result = train(recipe)
    scalars = read_scalars(out)
    for tag in ("train/loss", "train/accuracy", "train/lr", "train/grad_norm", "train/steps_per_second",
                "eval/loss", "eval/accuracy", "init/loss", "init/max_error"):
        assert tag in scalars, tag
    assert [s for s, _ in scalars["train/loss"]] == [5, 10, 15, 20]
    assert [s for s, _ in scalars["eval/accuracy"]] == [10, 20]
    assert scalars["eval/accuracy"][-1][1] == pytest.approx(result["eval/accuracy"])
    assert len(scalars["init/loss"]) == 30
    # learning rate after step 5 of a 4-step warm-up, 16-step cosine from the config's lr to 0
    lr = recipe.config.train.lr
    assert scalars["train/lr"][0][1] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 1 / 16)), rel=1e-5)
    assert all(g > 0 for _, g in scalars["train/grad_norm"])
    weights = [t for t in read_histogram_tags(out) if t.startswith("weights/")]
    assert sorted(weights) == sorted(f"weights/net.{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias"))
    assert read_text(out)["config"][0][1] == to_yaml(recipe.config)
    hparams = read_hparams(out)
    assert hparams["generator.head"] == "lowrank" and hparams["train.lr"] == pytest.approx(lr)


def _final_module(out: Path, step: int) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "checkpoints" / f"step_{step:08d}.pt")["module"]


@pytest.mark.parametrize("name", ["direct/digits_mlp-debug", "uhn/gcn-debug"])  # GCN: dropout RNG too
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(name, tmp_path):
    args = ["train.steps=24", "train.checkpoint_every=8", "train.eval_every=8", "init.steps=5"
            if name.startswith("uhn") else "train.log_every=4"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    train(load_recipe(name, [f"out={full}", *args]))
    shutil.copytree(full, killed)  # the killed run: its checkpoints after step 8 never happened
    for step in (16, 24):
        (killed / "checkpoints" / f"step_{step:08d}.pt").unlink()
    result = train(load_recipe(name, [f"out={killed}", *args]), resume=True)
    assert result["step"] == 24
    expected, resumed = _final_module(full, 24), _final_module(killed, 24)
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    # the resumed curve continues the first one without duplicates
    steps = [s for s, _ in read_scalars(killed)["eval/accuracy"]]
    assert steps == [8, 16, 24]


def test_resume_refuses_a_changed_config_and_a_fresh_run_refuses_an_old_folder(tmp_path):
    out = tmp_path / "run"
    train(load_recipe("direct/digits_mlp-debug", [f"out={out}", "train.steps=4"]))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(load_recipe("direct/digits_mlp-debug", [f"out={out}", "train.steps=4"]))
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.01 → 0\.1"):
        train(load_recipe("direct/digits_mlp-debug", [f"out={out}", "train.steps=8", "train.lr=0.1"]), resume=True)
    # more steps are allowed: a finished run can be extended
    assert train(load_recipe("direct/digits_mlp-debug", [f"out={out}", "train.steps=8"]), resume=True)["step"] == 8


@pytest.mark.parametrize("overrides, message", [
    (["train.lrr=0.1"], r"unknown key 'train.lrr' \(did you mean 'lr'\?\)"),
    (["train.steps=many"], r"train\.steps"),
    (["train.precision=fp8"], r"fp32"),
    (["train.warmup_steps=100"], r"warmup_steps \(100\) exceeds steps \(40\)"),
])
def test_config_errors_name_the_key_and_the_file(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as info:
        load_recipe("direct/digits_mlp-debug", [f"out={tmp_path}", *overrides])
    assert "digits_mlp-debug.yaml" in str(info.value)


def test_a_typo_in_a_config_file_names_the_file_and_the_key(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("base: " + str(config_path("direct/digits_mlp")) + "\ntrain:\n  stpes: 10\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml.*unknown key 'train.stpes' \(did you mean 'steps'\?\)"):
        load_recipe(config)


@pytest.mark.parametrize("overrides, message", [
    (["data={name: mnist, root: /nonexistent/mnist}"], r"/nonexistent/mnist"),
    (["target={name: gcn_small}"], r"cannot be fed image data"),
    (["target.num_classes=3"], r"needs \(2, 10\)"),
    (["data.name=imagenet"], r"unknown dataset 'imagenet'"),
    (["target.name=resnet"], r"unknown target 'resnet'"),
    (["generator.head=dense"], r"generator\.head"),
    (["label_smoothing=1.5"], r"label_smoothing must be in \[0, 1\)"),
    (["target_weight_decay=-0.1"], r"target_weight_decay must be >= 0"),
])
def test_bad_input_fails_before_anything_is_written(overrides, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "uhn/digits_mlp-debug", f"out={out}", *overrides]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_unwritable_output_folder_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "direct/digits_mlp-debug", f"out={blocker / 'run'}"]) == 2
    assert "not writable" in capsys.readouterr().err
