"""MotherNet against standard classifiers on real tables that installed packages bundle.

Tables: scikit-learn's iris, wine, breast_cancer and digits; statsmodels' anes96 (vote), fair
(any affair) and randhie (any doctor visit) when statsmodels is installed (``pip install
statsmodels``; its datasets ship inside the package). Each table: 5 stratified splits with at
most 1000 training rows (and at most 2000 test rows). Reported per model: ROC AUC (one-vs-rest
macro for multiclass), accuracy, fit time and predict time (``predict_proba`` on the test rows:
the first call, right after the fit, and the median of five more, on warm caches), medians of
times and means of scores.

    python benchmarks/tabular.py [--model PATH] [--estimators 1 4] [--fine-tune 0 30] [--splits 5]
                                 [--digits-classes 2 3 5 10]

MotherNet runs once per ensemble size and number of fine-tuning steps (``n_estimators``,
``fine_tune``).

``--digits-classes`` measures, instead, MotherNet and logistic regression on digits cut to its
first ``k`` classes: whether a gap on digits comes from its ten classes.

Targets: MotherNet's mean ROC AUC at least the best baseline's; its fit + predict faster than
HistGradientBoosting's; its predict time within 2x of logistic regression's.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hyperkit.tabular.classifier import MotherNetClassifier


def tables() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {name: loader(return_X_y=True) for name, loader in
           [("iris", load_iris), ("wine", load_wine), ("breast_cancer", load_breast_cancer), ("digits", load_digits)]}
    try:
        import statsmodels.api as sm
    except ImportError:
        print("(statsmodels not installed: its tables are skipped)")
        return out
    anes = sm.datasets.anes96.load_pandas().data
    out["anes96"] = (anes.drop(columns=["vote"]).to_numpy(float), anes["vote"].to_numpy())
    fair = sm.datasets.fair.load_pandas().data
    out["fair"] = (fair.drop(columns=["affairs"]).to_numpy(float), (fair["affairs"] > 0).to_numpy(int))
    rand = sm.datasets.randhie.load_pandas().data
    out["randhie"] = (rand.drop(columns=["mdvis"]).to_numpy(float), (rand["mdvis"] > 0).to_numpy(int))
    return out


def models(estimators: list[int], model_path: str | None, fine_tune: tuple[int, ...] = (0,)) -> dict:
    out = {}
    for steps in fine_tune:
        for k in estimators:
            name = f"MotherNet (n_estimators={k}" + (f", fine_tune={steps})" if steps else ")")
            out[name] = lambda k=k, steps=steps: MotherNetClassifier(model=model_path, n_estimators=k, fine_tune=steps)
    out.update({
        "LogisticRegression": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "HistGradientBoosting": lambda: HistGradientBoostingClassifier(random_state=0),
        "RandomForest": lambda: RandomForestClassifier(random_state=0),
        "k-NN": lambda: make_pipeline(StandardScaler(), KNeighborsClassifier()),
        "MLP": lambda: make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000, random_state=0)),
    })
    return out


def evaluate(make, X, y, splits: int) -> dict[str, float]:
    train_size = min(1000, len(y) // 2)
    test_size = min(2000, len(y) - train_size)
    scores: dict[str, list[float]] = {"auc": [], "accuracy": [], "fit": [], "predict": [], "predict_warm": []}
    for train, test in StratifiedShuffleSplit(splits, train_size=train_size, test_size=test_size,
                                              random_state=0).split(X, y):
        model = make()
        start = time.perf_counter()
        model.fit(X[train], y[train])
        fitted = time.perf_counter()
        proba = model.predict_proba(X[test])
        scores["predict"].append(time.perf_counter() - fitted)
        scores["fit"].append(fitted - start)
        rows = X[test]
        scores["predict_warm"].append(statistics.median(_seconds(model.predict_proba, rows) for _ in range(5)))
        classes = np.unique(y[train])
        prediction = classes[proba.argmax(1)]
        scores["accuracy"].append(accuracy_score(y[test], prediction))
        if len(classes) == 2:
            scores["auc"].append(roc_auc_score(y[test], proba[:, 1]))
        else:
            scores["auc"].append(roc_auc_score(y[test], proba, multi_class="ovr", labels=classes))
    return {"auc": statistics.mean(scores["auc"]), "accuracy": statistics.mean(scores["accuracy"]),
            **{key: statistics.median(scores[key]) for key in ("fit", "predict", "predict_warm")}}


def _seconds(call, *args) -> float:
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def digits_classes(ks: list[int], estimators: list[int], model_path: str | None, fine_tune: list[int],
                   splits: int) -> None:
    X, y = load_digits(return_X_y=True)
    chosen = {name: make for name, make in models(estimators, model_path, fine_tune).items()
              if name.startswith("MotherNet") or name == "LogisticRegression"}
    print("| digits classes | rows | " + " | ".join(chosen) + " |\n|---|---|" + "---|" * len(chosen))
    for k in ks:
        keep = y < k
        cells = [f"{evaluate(make, X[keep], y[keep], splits)['auc']:.4f}" for make in chosen.values()]
        print(f"| {k} | {int(keep.sum())} | " + " | ".join(cells) + " |", flush=True)
    print("\nROC AUC (one-vs-rest macro for k > 2).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="MotherNet weights (default: the shipped model)")
    parser.add_argument("--estimators", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--fine-tune", type=int, nargs="*", default=[0, 30], metavar="STEPS",
                        help="MotherNet's fine-tuning steps after generation (0: one forward pass)")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--digits-classes", type=int, nargs="*", default=None, metavar="K")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.splits} stratified splits, "
          "at most 1000 training rows\n")
    if args.digits_classes:
        digits_classes(args.digits_classes, args.estimators, args.model, args.fine_tune, args.splits)
        return
    data = tables()
    candidates = models(args.estimators, args.model, args.fine_tune)
    results = {name: {} for name in candidates}
    print("| table | rows × features, classes | " + " | ".join(results) + " |")
    print("|---|---|" + "---|" * len(results))
    for table, (X, y) in data.items():
        cells = []
        for name, make in candidates.items():
            results[name][table] = r = evaluate(make, X, y, args.splits)
            cells.append(f"{r['auc']:.3f} / {r['accuracy']:.3f}")
        print(f"| {table} | {len(y)} × {X.shape[1]}, {len(np.unique(y))} | " + " | ".join(cells) + " |", flush=True)
    print("\nROC AUC / accuracy per cell. Means over tables, with median fit and predict times:\n")
    print("| model | mean ROC AUC | mean accuracy | fit (ms) | predict (ms) | fit + predict (ms) | predict, warm (ms) |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for name, per_table in results.items():
        auc = statistics.mean(r["auc"] for r in per_table.values())
        acc = statistics.mean(r["accuracy"] for r in per_table.values())
        fit = 1000 * statistics.median(r["fit"] for r in per_table.values())
        predict = 1000 * statistics.median(r["predict"] for r in per_table.values())
        warm = 1000 * statistics.median(r["predict_warm"] for r in per_table.values())
        summary[name] = (auc, fit + predict, predict)
        print(f"| {name} | {auc:.4f} | {acc:.4f} | {fit:.1f} | {predict:.2f} | {fit + predict:.1f} | {warm:.2f} |")
    targets(summary)


def targets(summary: dict[str, tuple[float, float, float]]) -> None:
    """Each MotherNet row against the three targets; ``summary``: name → (mean ROC AUC, fit +
    predict ms, predict ms)."""
    baselines = {name: row for name, row in summary.items() if not name.startswith("MotherNet")}
    best = max(baselines, key=lambda name: baselines[name][0])
    boosting, logistic = baselines["HistGradientBoosting"], baselines["LogisticRegression"]
    print(f"\nTargets: ROC AUC ≥ {best}'s {baselines[best][0]:.4f}; fit + predict < HistGradientBoosting's "
          f"{boosting[1]:.1f} ms; predict ≤ 2 × LogisticRegression's {logistic[2]:.2f} ms.\n")
    print("| model | ROC AUC − best baseline | fit + predict / gradient boosting | predict / logistic regression "
          "| all three |")
    print("|---|---|---|---|---|")
    for name, (auc, total, predict) in summary.items():
        if name in baselines:
            continue
        met = auc >= baselines[best][0] and total < boosting[1] and predict <= 2 * logistic[2]
        print(f"| {name} | {auc - baselines[best][0]:+.4f} | {total / boosting[1]:.2f} | {predict / logistic[2]:.2f} "
              f"| {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
