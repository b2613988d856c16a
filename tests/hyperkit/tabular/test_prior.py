"""The synthetic-table prior: shapes, ranges, determinism, each family, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from hyperkit.tabular.prior import (Prior, _make_irrelevant, _make_redundant, _make_skewed, argmax_classes, boolean_task,
                                     gp_task, linear_task, mlp_task, to_classes, tree_task)


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
        assert batch.slots[b].tolist() == [True] * c + [False] * (7 - c)  # the first c output slots
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


def test_argmax_classes_label_unordered_regions_and_drop_empty_classes():
    rng = np.random.default_rng(0)
    latents = np.zeros((6, 4))
    latents[np.arange(6), [0, 0, 2, 2, 3, 3]] = 10.0  # latent 1 wins no row
    classes, k = argmax_classes(latents, rng)
    assert k == 3 and sorted(set(classes.tolist())) == [0, 1, 2]
    assert classes[0] == classes[1] != classes[2] == classes[3] != classes[4] == classes[5]
    # Two latents over a circle: the classes are two arcs, not ordered along either latent.
    angle = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    classes, k = argmax_classes(np.stack([np.cos(angle), np.sin(angle)], 1), rng)
    assert k == 2 and 0.2 < classes.mean() < 0.8


@pytest.mark.parametrize("family", [mlp_task, gp_task])
def test_several_latents_give_learnable_argmax_classes(family):
    accuracies, majority = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x, latents = family(400, 5, rng, num_latents=5)
        assert latents.shape == (400, 5) and np.isfinite(latents).all()
        label, k = argmax_classes(latents, rng)
        distance = ((x[300:, None, :] - x[None, :300, :]) ** 2).sum(-1)
        accuracies.append((label[:300][distance.argmin(1)] == label[300:]).mean())
        majority.append(np.bincount(label[300:]).max() / 100)
    assert np.mean(accuracies) > np.mean(majority) + 0.15


def test_argmax_fraction_changes_the_labels_and_is_validated():
    def labels(fraction):
        prior = Prior(max_features=5, weights={"gp": 1.0}, binary_fraction=0.0, argmax_fraction=fraction)
        batch = prior.sample(16, 200, np.random.default_rng(0))
        for b in range(16):
            assert sorted(set(batch.y[b].tolist())) == list(range(batch.num_classes[b]))  # no empty class
        return batch

    bands, regions = labels(0.0), labels(1.0)
    assert bands.num_classes.min() >= 3 and regions.num_classes.min() >= 2
    assert not np.array_equal(bands.y, regions.y)
    with pytest.raises(ValueError, match="argmax_fraction"):
        Prior(argmax_fraction=1.5)


@pytest.mark.parametrize("family", [mlp_task, gp_task, boolean_task, linear_task])
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


def test_slot_fraction_puts_classes_in_random_output_slots():
    prior = Prior(max_features=5, max_classes=10, slot_fraction=1.0)
    batch = prior.sample(64, 200, np.random.default_rng(0))
    for b in range(64):
        assert batch.slots[b].sum() == batch.num_classes[b]
        assert set(np.unique(batch.y[b]).tolist()) <= set(np.flatnonzero(batch.slots[b]).tolist())
    assert batch.slots[:, -1].mean() > 0.2  # the last slot: one table in 18 with the first-C slots
    with pytest.raises(ValueError, match="slot_fraction"):
        Prior(slot_fraction=-0.1)


def test_boolean_features_are_binary_and_categorical_columns_integer():
    x, label = boolean_task(100, 6, np.random.default_rng(0))
    assert set(np.unique(x)) <= {0.0, 1.0} and set(np.unique(label)) <= {0.0, 1.0}
    prior = Prior(max_features=8, weights={"mlp": 1.0}, categorical_probability=1.0, categorical_fraction=1.0)
    batch = prior.sample(3, 60, np.random.default_rng(0))
    real = batch.x[0, :, : batch.num_features[0]]
    assert np.array_equal(real, np.round(real)) and real.max() <= 9


def test_bad_prior_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown prior family 'forest'; registered prior families: boolean, gp, linear, "
                                         "mlp, tree; or name your own"):
        Prior(weights={"forest": 1.0})
    with pytest.raises(ValueError, match="must be non-negative"):
        Prior(weights={"mlp": -1.0})
    with pytest.raises(ValueError, match="max_classes >= 2"):
        Prior(max_classes=1)


def test_tree_task_labels_are_step_functions_of_few_features():
    rng = np.random.default_rng(0)
    x, latent = tree_task(400, 8, rng)
    assert x.shape == (400, 8) and latent.shape == (400,) and latent.std() > 0
    # Each tree splits on at most six features: the latent ignores the rest, so a row's latent is
    # unchanged by noise in at least two of the eight columns.
    _, many = tree_task(300, 5, rng, num_latents=3)
    assert many.shape == (300, 3)


def test_irrelevant_columns_keep_their_marginals_and_lose_their_relations():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    x[:, 1] = x[:, 0] + 0.01 * rng.normal(size=500)
    out = _make_irrelevant(x, rng, share=0.5)
    changed = [j for j in range(6) if not np.array_equal(out[:, j], x[:, j])]
    assert len(changed) == 3
    for j in changed:  # a row-shuffled copy of some column: the same sorted values as one of them
        assert any(np.allclose(np.sort(out[:, j]), np.sort(x[:, k])) for k in range(6))
        assert abs(np.corrcoef(out[:, j], x[:, j])[0, 1]) < 0.2 or j in (0, 1)


def test_redundant_and_skewed_columns():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4))
    redundant = _make_redundant(x, rng, share=1.0)
    best = [max(abs(np.corrcoef(redundant[:, j], x[:, k])[0, 1]) for k in range(4)) for j in range(4)]
    assert min(best) > 0.85  # each column a noisy copy of some column
    skewed = _make_skewed(x, rng, share=1.0)
    kept_order = [abs(np.corrcoef(np.argsort(np.argsort(skewed[:, j])), np.argsort(np.argsort(x[:, j])))[0, 1])
                  for j in range(4)]
    assert min(kept_order) > 0.999  # monotone: ranks unchanged
    assert max(abs(((s - s.mean()) ** 3).mean() / s.std() ** 3) for s in skewed.T) > 1  # and skewed


def test_the_new_options_reach_sampled_tables():
    prior = Prior(max_features=12, weights={"tree": 1.0}, irrelevant_probability=1.0, skew_probability=1.0)
    batch = prior.sample(8, 60, np.random.default_rng(0))
    assert np.isfinite(batch.x).all() and (batch.num_classes >= 2).all()


def test_linear_tables_mix_numeric_binary_and_one_hot_columns_and_their_latent_is_linear():
    mixed = 0
    for seed in range(10):  # one-hot groups take several columns each: wide tables are mostly 0/1
        x, latent = linear_task(500, 30, np.random.default_rng(seed))
        binary = [j for j in range(30) if set(np.unique(x[:, j])) <= {0.0, 1.0}]
        mixed += 0 < len(binary) < 30
    assert mixed >= 3
    coefficients, *_ = np.linalg.lstsq(x, latent, rcond=None)
    assert np.allclose(x @ coefficients, latent)  # exactly linear in the columns
    x3, latents = linear_task(100, 6, np.random.default_rng(0), num_latents=3)
    assert x3.shape == (100, 6) and latents.shape == (100, 3)


def test_noise_probability_blurs_the_labels():
    def agreement(noise):  # how well a 1-nearest-neighbour rule recovers the labels
        prior = Prior(max_features=4, max_classes=2, weights={"linear": 1.0}, noise_probability=noise)
        batch = prior.sample(32, 200, np.random.default_rng(0))
        x, y = batch.x[:, :150], batch.y
        distance = ((batch.x[:, 150:, None, :] - x[:, None, :, :]) ** 2).sum(-1)
        return (np.take_along_axis(y[:, :150], distance.argmin(2), 1) == y[:, 150:]).mean()

    assert agreement(1.0) < agreement(0.0) - 0.05
    with pytest.raises(ValueError, match="noise_probability"):
        Prior(noise_probability=2.0)
