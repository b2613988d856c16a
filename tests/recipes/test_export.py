"""`hyperkit export` and `hyperkit.load_run` on every recipe: the standalone networks compute what
the trained module computes, read from the run folder and from the exported file alone."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from hyperkit import create_target, load_exported, load_run
from hyperkit.cli import main
from hyperkit.data import digits
from hyperkit.data._common import stratified_split
from hyperkit.engine import latest_checkpoint, load_checkpoint
from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe
from hyperkit.recipes.runs import export_run
from hyperkit.tabular import prepare_tables
from hyperkit.generated import GeneratedTargets
from hyperkit.tasks import load_task, make_task

# Each recipe's debug config, cut to a three-step run with one checkpoint at the end.
RUNS = {
    "direct": ("direct/digits_mlp-debug", []),
    "uhn": ("uhn/digits_mlp-debug", ["init.steps=2"]),
    "recursive": ("recursive/debug", ["init.steps_per_level=2"]),
    "multi_model": ("multi_model/debug", ["init.steps=2"]),
    "multi_task": ("multi_task/debug", ["init.steps=2"]),
    "mothernet": ("mothernet/debug", []),
}
SHORT = ["train.steps=3", "train.warmup_steps=0", "train.eval_every=0", "train.checkpoint_every=0",
         "train.threads=1", "train.progress=false"]


def train_run(recipe: str, out, *overrides: str) -> None:
    config, extra = RUNS[recipe]
    train(load_recipe(config, [f"out={out}", *SHORT, *extra, *overrides]))


# `hyperkit export <run> exports/<run>.pt` for each run named on the command line, in one fresh
# process for all recipes (a process per recipe adds seconds each, mostly importing torch).
EXPORT_EACH = """import sys
from hyperkit.cli import main
sys.exit(max(main(["export", run, f"exports/{run}.pt"]) for run in sys.argv[1:]))"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every recipe trained for three steps into ``<folder>/<recipe>``, then exported through the
    CLI in another process whose working folder is ``<folder>`` (relative paths, as typed)."""
    folder = tmp_path_factory.mktemp("runs")
    for recipe in RUNS:
        train_run(recipe, folder / recipe)
    done = subprocess.run([sys.executable, "-c", EXPORT_EACH, *RUNS], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert all(f"wrote exports/{recipe}.pt" in done.stdout for recipe in RUNS)
    return folder


def inputs_of(run, name: str) -> tuple:
    """A test batch of the data that target ``name`` was trained on."""
    tasks = {t.name: t.data for t in getattr(run.config, "tasks", [])}
    task = load_task(tasks.get(name, getattr(run.config, "data", None)))
    return next(task.test_batches(64)).inputs


def trained_output(module, index: int, inputs: tuple) -> torch.Tensor:
    """The trained module's output for target ``index`` (generators of several targets take
    their indices and one input tuple per target)."""
    if isinstance(module, GeneratedTargets):
        return module([index], [inputs])[0]
    return module(*inputs)


@pytest.mark.parametrize("recipe", ["direct", "uhn", "recursive", "multi_model", "multi_task"])
def test_exported_networks_compute_what_the_trained_module_computes(recipe, runs):
    path = runs / "exports" / f"{recipe}.pt"
    saved = torch.load(path, weights_only=True)  # plain tensors and containers: no pickled classes
    assert (saved["format"], saved["recipe"], saved["step"], saved["ema"]) == ("hyperkit.export", recipe, 3, False)
    assert path.with_suffix(".yaml").is_file()

    run = load_run(runs / recipe)
    exported, with_module = load_exported(path), load_exported(path, module=True)
    assert run.step == 3 and exported.module is None and not run.module.training
    assert list(run.targets) == list(exported.targets) == list(saved["targets"]) and run.targets
    if recipe == "multi_model":  # every member, held-out ones included
        assert len(run.targets) == len(run.module.targets) == 16
    with torch.no_grad():
        for index, (name, network) in enumerate(run.targets.items()):
            inputs = inputs_of(run, name)
            expected = trained_output(run.module, index, inputs)
            assert expected.shape[-1] > 1 and not network.training
            entry = saved["targets"][name]  # the file alone: builder, arguments, state
            rebuilt = create_target(entry["builder"], **entry["arguments"])
            rebuilt.load_state_dict(entry["state"])
            # Exact for one target; a multi-target module generates only target `index` here but
            # every target at once for the export, which rounds differently (measured: up to 1e-7).
            for standalone in (network, exported.targets[name], rebuilt.eval()):
                torch.testing.assert_close(standalone(*inputs), expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(trained_output(with_module.module, index, inputs), expected, rtol=0, atol=0)


def test_mothernet_export_is_the_classifier_file(runs):
    run, exported = load_run(runs / "mothernet"), load_exported(runs / "exports" / "mothernet.pt")
    assert run.targets == {} and (exported.recipe, exported.step) == ("mothernet", 3)
    assert exported.config == run.config
    batch = run.config.prior.sample(2, 48, np.random.default_rng(0))
    x = prepare_tables(torch.from_numpy(batch.x), torch.from_numpy(batch.num_features), batch.split)
    y, split = torch.from_numpy(batch.y), batch.split
    with torch.no_grad():
        expected = run.module(x[:, :split], y[:, :split], x[:, split:])
        torch.testing.assert_close(exported.module.logits(x[:, :split], y[:, :split], x[:, split:]), expected,
                                   rtol=0, atol=0)


def test_export_holds_the_moving_average_when_the_run_kept_one(tmp_path):
    train_run("direct", tmp_path / "run", "train.ema_decay=0.5")
    state = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    saved = torch.load(export_run(tmp_path / "run", tmp_path / "model.pt"), weights_only=True)
    weights = saved["targets"]["target"]["state"]
    assert saved["ema"] is True and weights.keys() == state["module"].keys()
    for name, value in weights.items():
        assert torch.equal(value, state["ema"][f"module.{name}"]), name
    assert not torch.equal(weights["net.0.weight"], state["module"]["net.0.weight"])  # the raw weights differ
    run = load_run(tmp_path / "run")
    assert torch.equal(run.targets["target"].state_dict()["net.0.weight"], weights["net.0.weight"])


def test_export_picks_an_older_checkpoint_and_names_the_ones_there(tmp_path, capsys):
    train_run("uhn", tmp_path / "run", "train.checkpoint_every=2", "train.steps=4")
    out = tmp_path / "step2.pt"
    assert main(["export", str(tmp_path / "run"), str(out), "--checkpoint", "step_00000002.pt"]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["step"] == 2 and saved["source"] == "run/checkpoints/step_00000002.pt"
    older = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000002.pt")["module"]
    assert all(torch.equal(saved["module"][k], v) for k, v in older.items())
    assert load_run(tmp_path / "run", "step_00000002.pt").step == 2
    assert main(["export", str(tmp_path / "run"), str(out), "--checkpoint", "step_00000009.pt"]) == 2
    assert "step_00000002.pt, step_00000004.pt" in capsys.readouterr().err
    assert main(["export", str(tmp_path), str(out)]) == 2  # not a run folder
    assert "holds no config.yaml" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a file of `hyperkit export`"):
        load_exported(tmp_path / "run" / "checkpoints" / "step_00000002.pt")


def test_raw_images_standardised_with_the_saved_statistics_are_what_the_network_was_fed():
    fmt = make_task(digits()).input_format()
    bunch = load_digits()
    train_rows, _ = stratified_split(bunch.target, 0.75, np.random.default_rng(0))  # digits()'s own split
    raw = torch.from_numpy(bunch.images[train_rows][:, None])
    assert fmt["shape"] == [1, 8, 8]
    assert torch.equal(((raw - fmt["mean"][0]) / fmt["std"][0]).float(), digits().train_x)


def test_a_target_named_by_import_path_is_rebuilt_from_that_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # what the import of a dotted path adds, undone afterwards
    monkeypatch.delitem(sys.modules, "my_targets", raising=False)  # and taken out again afterwards
    (tmp_path / "my_targets.py").write_text(
        "import torch.nn as nn\n\n\n"
        "def small_mlp(in_features=64, num_classes=10, hidden=16):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))\n")
    train_run("uhn", "run", "target={name: my_targets.small_mlp, hidden: 8}")
    exported = load_exported(export_run("run", "model.pt"))
    saved = torch.load("model.pt", weights_only=True)["targets"]["target"]
    assert (saved["builder"], saved["arguments"]) == ("my_targets.small_mlp", {"hidden": 8, "in_features": 64, "num_classes": 10})
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(exported.targets["target"](x), load_run("run").module(x))
