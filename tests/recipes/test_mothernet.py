"""The mothernet recipe through the real CLI: trains, resumes exactly, exports classifier weights."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from hyperkit.cli import main
from hyperkit.engine import load_checkpoint, read_scalars
from hyperkit.tabular import MotherNet, MotherNetClassifier, Prior, load_pretrained
from hyperkit.recipes.mothernet import table_loss


def test_debug_run_trains_resumes_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train.steps=16", "train.checkpoint_every=8", "train.log_every=4", "train.eval_every=8"]
    assert main(["run", "mothernet/debug", f"out={out}", *args]) == 0
    losses = [v for _, v in read_scalars(out)["train/loss"]]
    assert len(losses) == 4 and all(map(math.isfinite, losses))
    assert all(0 <= v < 1 for _, v in read_scalars(out)["train/sample_seconds"])

    killed = tmp_path / "killed"
    shutil.copytree(out, killed)
    (killed / "checkpoints" / "step_00000016.pt").unlink()
    assert main(["run", "mothernet/debug", f"out={killed}", *args, "--resume"]) == 0
    full, resumed = (load_checkpoint(p / "checkpoints" / "step_00000016.pt") for p in (out, killed))
    assert all(torch.equal(full["module"][k], resumed["module"][k]) for k in full["module"])
    assert resumed["train_seconds"] > full["train_seconds"] / 4  # both stretches are counted

    assert main(["export", str(out), str(tmp_path / "mothernet.pt")]) == 0
    model = load_pretrained(tmp_path / "mothernet.pt")
    assert model.max_features == 12 and model.max_classes == 4
    X, y = load_iris(return_X_y=True)
    clf = MotherNetClassifier(model=tmp_path / "mothernet.pt").fit(X[::2], y[::2])
    assert clf.predict_proba(X[1::2]).shape == (75, 3) and np.isfinite(clf.predict_proba(X)).all()


def test_init_starts_from_an_exported_model_and_keeps_its_record(tmp_path):
    args = ["train.steps=4", "train.checkpoint_every=4", "train.log_every=2", "train.eval_every=4"]
    assert main(["run", "mothernet/debug", f"out={tmp_path / 'first'}", *args]) == 0
    assert main(["export", str(tmp_path / "first"), str(tmp_path / "first.pt")]) == 0
    first = torch.load(tmp_path / "first.pt", weights_only=True)

    # A negligible learning rate: what comes out is the model the run started from, the file's.
    assert main(["run", "mothernet/debug", f"out={tmp_path / 'second'}", f"init={tmp_path / 'first.pt'}",
                 *args, "train.lr=1e-12"]) == 0
    assert main(["export", str(tmp_path / "second"), str(tmp_path / "second.pt")]) == 0
    second = torch.load(tmp_path / "second.pt", weights_only=True)
    assert all(torch.allclose(first["model"][k], second["model"][k], atol=1e-6) for k in first["model"])
    assert second["info"]["init"]["step"] == 4 and second["info"]["total_steps"] == 8
    assert second["info"]["total_train_seconds"] >= first["info"]["train_seconds"]


def test_init_refuses_a_missing_file_or_other_sizes(tmp_path, capsys):
    assert main(["run", "mothernet/debug", f"out={tmp_path / 'a'}", f"init={tmp_path / 'none.pt'}"]) != 0
    assert "init: no MotherNet file" in capsys.readouterr().err
    args = ["train.steps=2", "train.checkpoint_every=2", "train.eval_every=2"]
    assert main(["run", "mothernet/debug", f"out={tmp_path / 'b'}", *args]) == 0
    assert main(["export", str(tmp_path / "b"), str(tmp_path / "b.pt")]) == 0
    assert main(["run", "mothernet/debug", f"out={tmp_path / 'c'}", f"init={tmp_path / 'b.pt'}",
                 "model.child_hidden=24"]) != 0
    err = capsys.readouterr().err
    assert "child_hidden: file" in err and not (tmp_path / "c" / "checkpoints").exists()


@pytest.mark.parametrize("override, message", [
    ("prior.min_rows=600", "prior.min_rows (600) must be at least 4 and at most max_rows (64)"),
    ("prior.slot_fraction=2", "invalid 'prior'"),  # the library Prior's own check of its arguments
])
def test_a_bad_prior_is_refused_when_the_config_is_read(tmp_path, capsys, override, message):
    assert main(["run", "mothernet/debug", f"out={tmp_path}", override]) != 0
    err = capsys.readouterr().err
    assert message in err and not (tmp_path / "checkpoints").exists()


def test_table_loss_masks_the_slots_no_class_of_a_table_occupies():
    torch.manual_seed(0)
    model = MotherNet(max_features=6, max_classes=5, embedding_size=16, num_layers=1, num_heads=2,
                      feedforward_size=16, decoder_width=16, child_hidden=8, child_rank=2)
    batch = Prior(max_features=6, max_classes=5, slot_fraction=1.0).sample(8, 40, np.random.default_rng(0))
    assert (batch.y.max(1) >= batch.num_classes).any()  # some classes sit beyond slot num_classes - 1
    loss, correct = table_loss(model.logits, batch, torch.device("cpu"))
    assert torch.isfinite(loss) and 0 <= int(correct) <= batch.y[:, batch.split:].size


def test_invariant_debug_run_trains_on_batches_of_one_width_and_exports(tmp_path):
    out = tmp_path / "run"
    args = ["train.steps=8", "train.checkpoint_every=8", "train.log_every=2", "train.eval_every=8"]
    assert main(["run", "mothernet/invariant_debug", f"out={out}", *args]) == 0
    losses = [v for _, v in read_scalars(out)["train/loss"]]
    assert len(losses) == 4 and all(map(math.isfinite, losses))
    assert main(["export", str(out), str(tmp_path / "inv.pt")]) == 0
    saved = torch.load(tmp_path / "inv.pt", weights_only=True)
    assert saved["arguments"]["architecture"] == "invariant" and "max_features" not in saved["arguments"]
    X, y = load_iris(return_X_y=True)
    clf = MotherNetClassifier(model=tmp_path / "inv.pt").fit(X[::2], y[::2])
    assert clf.predict_proba(X[1::2]).shape == (75, 3) and "hinge_a_0" in clf.arrays_


@pytest.mark.parametrize("override, message", [
    ("prior.batch_width=true", "prior.batch_width: the 'mothernet' architecture reads tables padded"),
    ("model.hinges=8", "model: hinges not read by architecture 'mothernet'"),
])
def test_settings_the_architecture_does_not_read_are_refused(tmp_path, capsys, override, message):
    assert main(["run", "mothernet/debug", f"out={tmp_path}", override]) != 0
    assert message in capsys.readouterr().err


def test_batch_width_batches_share_a_width_and_vary_below_it():
    prior = Prior(max_features=40, batch_width=True)
    widths = []
    for seed in range(12):
        batch = prior.sample(6, 30, np.random.default_rng(seed))
        width = batch.x.shape[-1]
        assert 1 <= width <= 40 and (batch.num_features <= width).all()
        assert (batch.num_features >= (width + 1) // 2).all()
        widths.append(width)
    assert len(set(widths)) > 4  # the width itself is drawn per batch


def test_a_user_trains_exports_and_uses_an_invariant_model_from_an_empty_folder(tmp_path):
    """As a new user would: the CLI in a folder of their own, then their own script on their own
    table (a string column, missing values, twelve classes, columns in another order)."""
    import subprocess
    import sys

    def run(*command):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run("hyperkit", "run", "mothernet/invariant_debug", "train.steps=4", "train.checkpoint_every=4",
        "train.eval_every=4", "train.log_every=2")
    run("hyperkit", "export", "runs/mothernet/invariant_debug", "mine.pt")
    (tmp_path / "use.py").write_text(
        "import numpy as np, pandas as pd\n"
        "from sklearn.compose import make_column_transformer\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import OneHotEncoder\n"
        "from hyperkit import MotherNetClassifier\n"
        "rng = np.random.default_rng(0)\n"
        "frame = pd.DataFrame({'a': rng.normal(size=240), 'b': rng.normal(size=240),\n"
        "                      'city': rng.choice(['x', 'y', 'z'], 240)})\n"
        "frame.loc[::7, 'a'] = np.nan\n"
        "label = pd.Series(rng.integers(0, 12, 240)).map(lambda k: f'class {k}')\n"
        "encode = make_column_transformer((OneHotEncoder(), ['city']), remainder='passthrough')\n"
        "model = make_pipeline(encode, MotherNetClassifier(model='mine.pt')).fit(frame, label)\n"
        "proba = model.predict_proba(frame[['city', 'b', 'a']])\n"
        "print(proba.shape, len(model.classes_), np.isfinite(proba).all())\n")
    assert run(sys.executable, "use.py").strip() == "(240, 12) 12 True"
