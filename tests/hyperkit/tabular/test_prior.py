"""The synthetic-table prior: shapes, ranges, determinism, each family, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from hyperkit.tabular.prior import Prior, boolean_task, gp_task, mlp_task, to_classes


def test_batches_respect_the_declared_ranges():
    prior = Prior(max_features=30, max_classes=7)
    batch = prior.sample(32, 100, np.random.default_rng(0))
    assert batch.x.shape == (32, 100, 30) and batch.x.dtype == np.float32 and batch.y.shape == (32, 100)
    assert 2 <= batch.split <= 99
    for b in range(32):
        d, c = batch.num_features[b], batch.num_classes[b]
        assert 1 <= d <= 30 and 2 <= c <= 7
        assert np.all(batch.x[b, :, d:] == 0) and np.isfinite(batch.x[b]).all()
        assert batch.y[b].min() >= 0 and batch.y[b].max() < c
    assert len(set(batch.num_classes.tolist())) > 3  # many-class tables are common, not just binary


def test_sampling_is_a_function_of_the_seed():
    prior = Prior(max_features=10)
    a, b = (prior.sample(4, 50, np.random.default_rng(7)) for _ in range(2))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and a.split == b.split
    assert not np.array_equal(a.x, prior.sample(4, 50, np.random.default_rng(8)).x)


def test_to_classes_cuts_a_latent_into_contiguous_groups():
    latent = np.linspace(-1, 1, 1000)
    classes = to_classes(latent, 4, np.random.default_rng(0))
    assert sorted(set(classes.tolist())) == [0, 1, 2, 3]
    assert (np.diff(classes) != 0).sum() == 3  # monotone latent: three boundaries


@pytest.mark.parametrize("family", [mlp_task, gp_task, boolean_task])
def test_each_family_gives_features_that_predict_the_label(family):
    accuracies = []
    for seed in range(10):
        x, latent = family(400, 5, np.random.default_rng(seed))
        assert x.shape == (400, 5) and latent.shape == (400,) and np.isfinite(x).all()
        label = latent > np.median(latent) if family is not boolean_task else latent.astype(bool)
        # a 1-nearest-neighbour rule on the features beats chance: the label depends on them
        distance = ((x[300:, None, :] - x[None, :300, :]) ** 2).sum(-1)
        accuracies.append((label[:300][distance.argmin(1)] == label[300:]).mean())
    assert np.mean(accuracies) > 0.65  # chance is 0.5; wide random MLPs gave 0.56


def test_boolean_features_are_binary_and_categorical_columns_integer():
    x, label = boolean_task(100, 6, np.random.default_rng(0))
    assert set(np.unique(x)) <= {0.0, 1.0} and set(np.unique(label)) <= {0.0, 1.0}
    prior = Prior(max_features=8, weights={"mlp": 1.0}, categorical_probability=1.0, categorical_fraction=1.0)
    batch = prior.sample(3, 60, np.random.default_rng(0))
    real = batch.x[0, :, : batch.num_features[0]]
    assert np.array_equal(real, np.round(real)) and real.max() <= 9


def test_bad_prior_arguments_are_refused():
    with pytest.raises(ValueError, match="'mlp', 'gp', 'boolean'"):
        Prior(weights={"tree": 1.0})
    with pytest.raises(ValueError, match="max_classes >= 2"):
        Prior(max_classes=1)
