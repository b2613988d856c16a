"""The mothernet recipe through the real CLI: trains, resumes exactly, exports classifier weights."""

from __future__ import annotations

import math
import shutil

import numpy as np
import torch
from sklearn.datasets import load_iris

from hyperkit.cli import main
from hyperkit.engine import load_checkpoint, read_scalars
from hyperkit.tabular import MotherNetClassifier, load_pretrained


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
