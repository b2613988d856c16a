"""``hyperkit demo``: the two faces of hyperkit in a minute each.

    hyperkit demo               # MotherNet: fit small real tables by one forward pass
    hyperkit demo uhn           # a generator emits every weight of a digits MLP, next to direct training

The ``uhn`` demo is a tour of describe → Generator → init_statistics → call.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import hyperkit
from hyperkit.data import digits


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(-1) == labels).float().mean().item()


def _train(forward, parameters, data, steps: int, lr: float, seed: int) -> float:
    """Minibatch Adam on the training split; returns the wall time in seconds."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    rng = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        batch = torch.randint(0, len(data.train_y), (128,), generator=rng)
        loss = F.cross_entropy(forward(data.train_x[batch]), data.train_y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def uhn(steps: int = 500, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    data = digits(seed=seed)
    target = hyperkit.create_target("mlp_digits")
    spec = hyperkit.describe(target, task={"num_classes": 10, "input_size": 64})
    print(f"target: mlp_digits, {spec.num_weights:,} weights in {len(spec.params)} tensors")

    generator = hyperkit.Generator(spec, head="lowrank", width=64, fourier_features=512, rank=16)
    report = hyperkit.init_statistics(generator, spec)
    print(f"generator: {sum(p.numel() for p in generator.parameters()):,} parameters (low-rank head); "
          f"statistics matched to PyTorch's default init in {report.steps} steps "
          f"(max error {report.max_error:.3f} of each tensor's init std)")

    uhn_time = _train(lambda x: hyperkit.call(target, generator(spec), x), generator.parameters(),
                      data, steps, 1e-3, seed)
    direct = hyperkit.create_target("mlp_digits")
    direct_time = _train(direct, direct.parameters(), data, steps, 3e-3, seed)
    with torch.no_grad():
        results = {"generated": _accuracy(hyperkit.call(target, generator(spec), data.test_x), data.test_y),
                   "direct": _accuracy(direct(data.test_x), data.test_y)}
    print(f"\n| training | test accuracy | wall time ({steps} steps) |\n|---|---|---|")
    print(f"| generator (hyperkit) | {results['generated']:.4f} | {uhn_time:.1f} s |")
    print(f"| direct (same MLP) | {results['direct']:.4f} | {direct_time:.1f} s |")
    return results


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def tabular(seed: int = 0) -> dict[str, dict[str, float]]:
    """MotherNet (the shipped model: its default, whose generated child 30 gradient steps refine,
    and the generated child alone) next to logistic regression and gradient boosting on scikit-learn's bundled tables;
    prints accuracy, ROC AUC, fit and predict time."""
    import warnings

    from sklearn.datasets import load_breast_cancer, load_iris, load_wine
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hyperkit.tabular import MotherNetClassifier, load_pretrained

    load_pretrained()  # read the weights once, outside the timings,
    X, y = load_iris(return_X_y=True)  # and pay each path's first-call costs (BLAS thread control)
    MotherNetClassifier(fine_tune=1).fit(X[::10], y[::10]).predict_proba(X[:5])
    models = {"MotherNet (hyperkit)": lambda: MotherNetClassifier(),
              "MotherNet, one forward pass": lambda: MotherNetClassifier(fine_tune=0),
              "LogisticRegression": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
              "HistGradientBoosting": lambda: HistGradientBoostingClassifier(random_state=seed)}
    results: dict[str, dict[str, float]] = {}
    print("| table | model | accuracy | ROC AUC | fit (ms) | predict (ms) |\n|---|---|---|---|---|---|")
    for table, loader in (("iris", load_iris), ("wine", load_wine), ("breast_cancer", load_breast_cancer)):
        X, y = loader(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
        for name, make in models.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, fit = _timed(lambda: make().fit(X_train, y_train))
                proba, predict = _timed(lambda: model.predict_proba(X_test))
            accuracy = float((model.classes_[proba.argmax(1)] == y_test).mean())
            auc = roc_auc_score(y_test, proba[:, 1]) if proba.shape[1] == 2 else roc_auc_score(y_test, proba, multi_class="ovr")
            results[f"{table}/{name}"] = {"accuracy": accuracy, "auc": float(auc)}
            print(f"| {table} | {name} | {accuracy:.3f} | {auc:.3f} | {1000 * fit:.1f} | {1000 * predict:.2f} |")
    return results


def main(which: str = "tabular", steps: int = 500, seed: int = 0):
    return tabular(seed) if which == "tabular" else uhn(steps, seed)
