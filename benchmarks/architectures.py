"""MotherNet architectures at equal CPU training time, on the tuning half of the real-table suite.

Each run folder is a ``mothernet`` run whose checkpoints were kept (copied aside as they were
written: ``--kept FOLDER`` per run, default ``<run>_keep``). For each training time asked for, the
checkpoint of each run closest to it (time read from the run's logged throughput, every stretch
counted) is exported and scored as ``MotherNetClassifier(model=it)`` on the tuning half of
``benchmarks/tables.py`` (5 stratified splits), one member, no fine-tuning: the generated child
itself. The held-out half is not used: this is a tool for choosing.

    python benchmarks/architectures.py RUN [RUN ...] --minutes 5 10 20 [--splits 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
from tables import TABLES, TUNING, splits  # noqa: E402

from hyperkit.engine.tensorboard import read_scalars  # noqa: E402
from hyperkit.recipes.mothernet import MotherNetRecipe  # noqa: E402
from hyperkit.tabular import MotherNetClassifier  # noqa: E402


def checkpoint_times(run: Path, kept: Path) -> dict[Path, float]:
    """Training seconds at each kept checkpoint, from the logged ``train/steps_per_second``."""
    rates = sorted(read_scalars(run).get("train/steps_per_second", []))
    times = {}
    for checkpoint in sorted(kept.glob("step_*.pt")):
        step = int(checkpoint.stem.split("_")[1])
        seconds, previous = 0.0, 0
        for logged, rate in rates:
            if previous >= step:
                break
            upto = min(logged, step)
            seconds += (upto - previous) / rate
            previous = upto
        if previous >= step:
            times[checkpoint] = seconds
    return times


def score(model_file: Path, tables: list[str], n_splits: int) -> dict[str, float]:
    """Mean ROC AUC per table of one generated child."""
    out = {}
    for name in tables:
        X, y = TABLES[name]()
        aucs = []
        for train, test in splits(X, y, n_splits):
            clf = MotherNetClassifier(model=model_file).fit(X[train], y[train])
            proba = clf.predict_proba(X[test])
            if proba.shape[1] == 2:
                aucs.append(roc_auc_score(y[test], proba[:, 1]))
            else:
                aucs.append(roc_auc_score(y[test], proba, multi_class="ovr", labels=clf.classes_))
        out[name] = statistics.mean(aucs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--kept", nargs="*", type=Path, default=None, help="kept checkpoints per run")
    parser.add_argument("--minutes", nargs="+", type=float, required=True)
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    kept = args.kept or [Path(f"{run}_keep") for run in args.runs]
    tables = sorted(TUNING)
    print(f"tuning half: {len(tables)} tables, {args.splits} splits, one member, no fine-tuning\n")
    print("| run | minutes asked | checkpoint | minutes trained | mean ROC AUC |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for run, keep in zip(args.runs, kept):
            times = checkpoint_times(run, keep)
            for minutes in args.minutes:
                checkpoint = min(times, key=lambda c: abs(times[c] - 60 * minutes))
                model_file = MotherNetRecipe.export(run, Path(folder) / "model.pt", checkpoint=checkpoint)
                per_table = score(model_file, tables, args.splits)
                auc = np.mean(list(per_table.values()))
                print(
                    f"| {run.name} | {minutes:g} | {checkpoint.name} | {times[checkpoint] / 60:.1f} | {auc:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
