"""MotherNet: preprocessing, shapes, permutation invariance over rows, gradients, standalone child."""

from __future__ import annotations

import pytest
import torch

from hyperkit.tabular.model import MotherNet, prepare_tables

SMALL = dict(max_features=8, max_classes=4, embedding_size=16, num_layers=1, num_heads=2, feedforward_size=32,
             decoder_width=32, child_hidden=16, child_rank=4)


def test_prepare_tables_standardises_with_training_rows_and_scales_for_padding():
    x = torch.zeros(2, 50, 6)
    x[0, :, :2] = torch.randn(50, 2) * 5 + 3
    x[1, :, :6] = torch.randn(50, 6)
    x[1, 3, 1] = float("nan")
    out = prepare_tables(x, torch.tensor([2, 6]), split=40)
    train = out[0, :40, :2] / (6 / 2) ** 0.5
    assert torch.allclose(train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(train.pow(2).mean(0), torch.ones(2), atol=1e-4)
    assert torch.all(out[0, :, 2:] == 0) and out[1, 3, 1] == 0 and torch.isfinite(out).all()


@pytest.mark.parametrize("pooling, head", [("class_mean", "flat"), ("attention", "lowrank")])
def test_children_do_not_depend_on_the_order_of_training_rows(pooling, head):
    torch.manual_seed(0)
    model = MotherNet(**SMALL, pooling=pooling, head=head).eval()
    x, y = torch.randn(3, 30, 8), torch.randint(0, 4, (3, 30))
    order = torch.randperm(30)
    params, shuffled = model(x, y), model(x[:, order], y[:, order])
    for name in params:
        assert torch.allclose(params[name], shuffled[name], atol=1e-5), name
    assert model.logits(x, y, torch.randn(3, 7, 8)).shape == (3, 7, 4)


def test_gradients_reach_encoder_generator_and_shared_factors():
    model = MotherNet(**SMALL)
    x, y = torch.randn(2, 20, 8), torch.randint(0, 4, (2, 20))
    model.logits(x[:, :15], y[:, :15], x[:, 15:]).logsumexp(-1).sum().backward()
    for name in ("feature_in.weight", "label_in.weight", "encoder.layers.0.linear1.weight", "shared.0"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.child.parameters())  # the template is never trained


def test_a_standalone_child_computes_what_the_batched_call_computes():
    model = MotherNet(**SMALL).eval()
    x, y, rows = torch.randn(2, 20, 8), torch.randint(0, 4, (2, 20)), torch.randn(2, 5, 8)
    with torch.no_grad():
        params = model(x, y)
        batched = model.run_child(params, rows)
        child = model.child_module(params, index=1)
        assert torch.allclose(child(rows[1]), batched[1], atol=1e-5)
        assert torch.allclose(child.to_dense()(rows[1]), batched[1], atol=1e-5)
