"""Recursive hypernetworks: the chain generates the target, gradients reach the root, init per level."""

from __future__ import annotations

import torch

import hyperkit
from hyperkit.recursive import GeneratorChain, init_chain

SMALL = dict(width=16, fourier_features=32, num_blocks=1, rank=4)


def test_the_chain_generates_the_target_and_only_the_root_learns():
    target = hyperkit.create_target("mlp_tiny")
    chain = GeneratorChain(target, depth=2, head="lowrank", **SMALL)
    params = chain()
    assert {k: tuple(v.shape) for k, v in params.items()} == {k: tuple(p.shape) for k, p in target.named_parameters()}
    hyperkit.call(target, params, torch.randn(3, 4)).square().sum().backward()
    assert chain.root.get_parameter("out_u.weight").grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in chain.levels.parameters())
    # the fixed Fourier matrices are the root's own tensors at every level
    assert all(level.generator.context_features.B is chain.root.context_features.B for level in chain.levels)
    assert [len(g) for g in chain.generate()] == [len(chain.specs[k].params) for k in range(3)]


def test_top_down_init_matches_every_level_to_its_default_statistics():
    torch.manual_seed(0)
    chain = GeneratorChain(hyperkit.create_target("mlp_tiny"), depth=2, head="scalar", **SMALL)
    seen = []
    reports = init_chain(chain, steps_per_level=300, lr=3e-3, on_step=lambda level, step, loss: seen.append(level))
    assert [r.level for r in reports] == [1, 2, 3] and seen == [1] * 300 + [2] * 300 + [3] * 300
    for report in reports:
        assert report.max_error < 0.3, str(report)


def test_level_stats_is_the_init_loss_of_each_intermediate_level():
    from hyperkit.initialization import statistics_loss

    chain = GeneratorChain(hyperkit.create_target("mlp_tiny"), depth=2, head="scalar", **SMALL)
    levels = chain.generate()
    stats = chain.level_stats(levels)
    assert stats.shape == (2,)
    assert torch.allclose(stats, torch.stack([statistics_loss(levels[k], chain.specs[k]) for k in range(2)]))
    stats.sum().backward()  # a training loss term: its gradient reaches the root
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in chain.root.parameters())
    flat = GeneratorChain(hyperkit.create_target("mlp_tiny"), depth=0, head="scalar", **SMALL)
    assert flat.level_stats(flat.generate()).shape == (0,)
