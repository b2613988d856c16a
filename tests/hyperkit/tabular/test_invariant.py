"""InvariantMotherNet: invariance to the order of features, classes and rows by construction,
padding, gradients, the standalone child, and the classifier on top of it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from hyperkit.tabular import MotherNetClassifier, predict_numpy, save_pretrained
from hyperkit.tabular.classifier import _member, _proba, load_pretrained
from hyperkit.tabular.invariant import HingeFeatures, InvariantMotherNet, child_logits

SMALL = dict(embedding_size=16, num_heads=2, num_blocks=2, bins=8, hinges=3, child_hidden=12)


@pytest.fixture(scope="module")
def model() -> InvariantMotherNet:
    torch.manual_seed(0)
    return InvariantMotherNet(**SMALL).eval()


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    return save_pretrained(
        model, {"architecture": "invariant", **SMALL}, tmp_path_factory.mktemp("m") / "inv.pt"
    )


def _table(seed=0, rows=40, features=6, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, rows, features, generator=g), torch.randint(0, classes, (2, rows), generator=g)


@torch.no_grad()
def test_permuting_features_leaves_the_child_unchanged_and_permuting_classes_permutes_its_outputs(model):
    x, y = _table()
    logits = model.logits(x[:, :30], y[:, :30], x[:, 30:], num_classes=3)
    features, relabel = torch.randperm(6), torch.tensor([2, 0, 1])  # class c becomes relabel[c]
    moved = model.logits(x[:, :30, features], relabel[y[:, :30]], x[:, 30:, features], num_classes=3)
    assert torch.allclose(moved[..., relabel], logits, atol=1e-5)
    assert logits.std() > 0.05  # not a constant child


@torch.no_grad()
def test_row_order_and_padding_columns_do_not_matter(model):
    x, y = _table(1)
    params = model(x, y, num_classes=3)
    rows = torch.randperm(40)
    shuffled = model(x[:, rows], y[:, rows], num_classes=3)
    assert all(torch.allclose(params[k], shuffled[k], atol=1e-5) for k in params)
    padded = torch.cat([x, torch.randn(2, 40, 4) * 9], -1)
    wide = model(padded, y, num_features=torch.tensor([6, 6]), num_classes=3)
    assert all(
        torch.allclose(params[k], wide[k][:, :6] if k in ("hinge_a", "hinge_b", "w1") else wide[k], atol=1e-5)
        for k in params
    )
    assert wide["w1"][:, 6:].abs().max() == 0  # padding columns get no weight


def test_tables_of_a_batch_may_differ_in_features_and_classes(model):
    x, y = _table(2, classes=5)
    y[0] = y[0] % 2  # table 0 is binary, table 1 has five classes
    sizes = torch.tensor([3, 6]), torch.tensor([2, 5])
    with torch.no_grad():
        batched = model.logits(x[:, :30], y[:, :30], x[:, 30:], *sizes)
        alone = model.logits(x[:1, :30, :3], y[:1, :30], x[:1, 30:, :3], num_classes=2)
    assert batched.shape == (2, 10, 5)
    assert torch.allclose(batched[0, :, :2], alone[0], atol=1e-5)


def test_gradients_reach_every_part():
    model = InvariantMotherNet(**SMALL)
    x, y = _table(3)
    model.logits(x[:, :30], y[:, :30], x[:, 30:], num_classes=3).logsumexp(-1).sum().backward()
    for name in (
        "cell_in.weight",
        "feature_in.weight",
        "class_in.weight",
        "pair_bias.0.weight",
        "blocks.1.attend_features.qkv.weight",
        "blocks.0.attend_classes.out.weight",
        "table.1.weight",
        "hinge_out.weight",
        "w1_out.weight",
        "b1_out.weight",
        "w2_out.weight",
    ):
        assert model.get_parameter(name).grad.abs().sum() > 0, name


def test_the_hinge_module_computes_what_child_logits_computes(model):
    x, y = _table(4)
    with torch.no_grad():
        params = model(x, y, num_classes=3)
        batched = child_logits(params, x)
        expand = HingeFeatures(params["hinge_a"][1], params["hinge_b"][1])
        h = torch.relu(expand(x[1]) @ params["w1"][1].flatten(0, 1) + params["b1"][1])
        assert torch.allclose(h @ params["w2"][1].T + params["b2"][1], batched[1], atol=1e-5)


def test_a_newly_built_child_starts_at_unit_scale():
    """The heads' initialisation: logits of a random table neither vanish nor explode, for few and
    for many features."""
    torch.manual_seed(0)
    model = InvariantMotherNet(**SMALL)
    for features in (2, 60):
        x, y = _table(5, rows=64, features=features)
        with torch.no_grad():
            scale = model.logits(x[:, :48], y[:, :48], x[:, 48:], num_classes=3).std().item()
        assert 0.2 < scale < 5, (features, scale)


def test_the_classifier_takes_an_invariant_model_from_its_file(model_file):
    X, y = load_wine(return_X_y=True)
    clf = MotherNetClassifier(model=model_file).fit(X[::2], y[::2])
    proba = clf.predict_proba(X[1::2])
    assert proba.shape == (89, 3) and np.allclose(proba.sum(1), 1)
    assert isinstance(load_pretrained(model_file), InvariantMotherNet)
    # child_ is the same function as predict_proba; export works without torch.
    child = clf.child_(torch.tensor(clf.preprocess(X[1::2]), dtype=torch.float32)).exp().detach().numpy()
    assert np.allclose(child, proba, atol=1e-5)
    assert np.allclose(predict_numpy(clf.export(), X[1::2]), proba)
    assert np.allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X[1::2]), proba)


def test_the_classifier_does_not_depend_on_column_order(model_file):
    X, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(X.shape[1])
    a = MotherNetClassifier(model=model_file).fit(X[::2], y[::2]).predict_proba(X[1::2])
    b = MotherNetClassifier(model=model_file).fit(X[::2, order], y[::2]).predict_proba(X[1::2, order])
    assert np.allclose(a, b, atol=1e-5)


def test_no_cap_on_features_or_classes(model_file):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 130))
    y = X[:, :12].argmax(1)  # twelve classes, 130 features: no PCA, no refusal
    clf = MotherNetClassifier(model=model_file).fit(X[:200], y[:200])
    assert clf.predict_proba(X[200:]).shape == (100, 12) and "pca_components" not in clf.arrays_
    assert clf.arrays_["w1_0"].shape[0] == 130 * (SMALL["hinges"] + 1)


def test_fine_tuning_and_members_of_an_invariant_model(model_file):
    X, y = load_wine(return_X_y=True)
    generated = MotherNetClassifier(model=model_file, fine_tune=0, n_estimators=3).fit(X[::2], y[::2])
    tuned = MotherNetClassifier(model=model_file, n_estimators=3, fine_tune=20).fit(X[::2], y[::2])
    x, codes = generated.preprocess(X[::2]), y[::2]
    for m in range(3):
        loss = [
            -np.log(_proba(x, _member(c.arrays_, m))[np.arange(len(codes)), codes]).mean()
            for c in (generated, tuned)
        ]
        assert loss[1] < loss[0] - 0.01, (m, loss)
    first, second = _member(generated.arrays_, 0), _member(generated.arrays_, 1)
    assert not np.allclose(first[2], second[2])  # members read different rows
