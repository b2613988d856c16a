"""Tests for hyperkit.engine.schedule: warm-up/cosine values and AdamW decay groups."""

import math
from itertools import pairwise

import pytest
import torch
import torch.nn as nn

from hyperkit.engine import build_optimizer, cosine_with_warmup

BASE_LR = 0.1


def _learning_rates(scheduler, optimizer, num_steps):
    """lr of the first group before each of ``num_steps`` optimiser steps."""
    rates = []
    for _ in range(num_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def _sgd(*learning_rates):
    groups = [{"params": [nn.Parameter(torch.zeros(1))], "lr": lr} for lr in learning_rates]
    return torch.optim.SGD(groups, lr=learning_rates[0])


def test_cosine_with_warmup_values_at_phase_boundaries():
    optimizer = _sgd(BASE_LR)
    scheduler = cosine_with_warmup(optimizer, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    rates = _learning_rates(scheduler, optimizer, 131)

    assert rates[0] == pytest.approx(0.01)  # warm-up starts at lr / warmup_steps, not 0
    assert rates[4] == pytest.approx(0.05)  # middle of the warm-up
    assert rates[9] == pytest.approx(BASE_LR)  # end of the warm-up
    assert rates[10] == pytest.approx(BASE_LR)  # cosine starts at the top
    assert rates[35] == pytest.approx(BASE_LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))))
    assert rates[60] == pytest.approx(BASE_LR * 0.55)  # halfway down the cosine
    assert rates[110] == pytest.approx(BASE_LR * 0.1)  # end of the cosine
    assert rates[130] == pytest.approx(BASE_LR * 0.1)  # stays at the floor afterwards
    assert all(a <= b for a, b in pairwise(rates[:10]))
    assert all(a >= b for a, b in pairwise(rates[10:111]))


def test_cosine_with_warmup_scales_every_group_and_allows_no_warmup():
    optimizer = _sgd(1.0, 0.5)
    scheduler = cosine_with_warmup(optimizer, warmup_steps=0, total_steps=4)
    assert scheduler.get_last_lr() == pytest.approx([1.0, 0.5])
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.5, 0.25])
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.0, 0.0])


def test_cosine_with_warmup_resumes_from_state_dict():
    optimizer = _sgd(BASE_LR)
    scheduler = cosine_with_warmup(optimizer, warmup_steps=3, total_steps=20)
    _learning_rates(scheduler, optimizer, 7)

    resumed_optimizer = _sgd(BASE_LR)
    resumed = cosine_with_warmup(resumed_optimizer, warmup_steps=3, total_steps=20)
    resumed.load_state_dict(scheduler.state_dict())
    resumed_optimizer.load_state_dict(optimizer.state_dict())

    assert _learning_rates(resumed, resumed_optimizer, 5) == pytest.approx(
        _learning_rates(scheduler, optimizer, 5)
    )


@pytest.mark.parametrize(
    "warmup_steps, total_steps, min_lr_ratio, message",
    [(-1, 10, 0.0, "warmup_steps"), (10, 5, 0.0, "total_steps"), (0, 10, 1.5, "min_lr_ratio")],
)
def test_cosine_with_warmup_rejects_bad_arguments(warmup_steps, total_steps, min_lr_ratio, message):
    with pytest.raises(ValueError, match=message):
        cosine_with_warmup(_sgd(BASE_LR), warmup_steps, total_steps, min_lr_ratio)


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(5, 4)
        self.linear = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2, bias=False)
        self.scale = nn.Parameter(torch.ones(()))
        self.frozen = nn.Parameter(torch.ones(3, 3), requires_grad=False)


def test_build_optimizer_exempts_biases_and_norms_from_weight_decay():
    block = _Block()
    optimizer = build_optimizer(block, lr=1e-3, weight_decay=0.05, betas=(0.8, 0.9))

    decay_group, no_decay_group = optimizer.param_groups
    assert isinstance(optimizer, torch.optim.AdamW)
    assert decay_group["weight_decay"] == 0.05 and no_decay_group["weight_decay"] == 0.0
    assert {id(p) for p in decay_group["params"]} == {
        id(block.embedding.weight), id(block.linear.weight), id(block.head.weight)
    }
    assert {id(p) for p in no_decay_group["params"]} == {
        id(block.linear.bias), id(block.norm.weight), id(block.norm.bias), id(block.scale)
    }
    for group in optimizer.param_groups:
        assert group["lr"] == 1e-3 and group["betas"] == (0.8, 0.9)


def test_build_optimizer_accepts_named_parameters_and_decays_only_matrices():
    block = _Block()
    weight_before = block.head.weight.detach().clone()
    bias_before = block.linear.bias.detach().clone()
    optimizer = build_optimizer(block.named_parameters(), lr=0.1, weight_decay=0.5)
    # Zero gradients: AdamW's update is then exactly the decay, lr * weight_decay * value.
    for param in block.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    torch.testing.assert_close(block.head.weight, weight_before * (1 - 0.1 * 0.5))
    torch.testing.assert_close(block.linear.bias, bias_before)


def test_build_optimizer_rejects_unnamed_parameters_and_empty_modules():
    with pytest.raises(TypeError, match="named_parameters"):
        build_optimizer(_Block().parameters(), lr=1e-3, weight_decay=0.1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(nn.ReLU(), lr=1e-3, weight_decay=0.1)
