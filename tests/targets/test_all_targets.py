"""One test set parametrised over every registered target (timm style)."""

import pytest
import torch

import hyperkit

TARGETS = hyperkit.list_targets()
SMALL = dict(width=32, fourier_features=64, num_blocks=1)


def build(name):
    model = hyperkit.create_target(name).eval()
    return model, model.example_inputs()


@pytest.mark.parametrize("name", TARGETS)
def test_spec_matches_named_parameters(name):
    model, _ = build(name)
    spec = hyperkit.describe(model)
    assert list(spec.params) == [n for n, _ in model.named_parameters()]
    assert [p.shape for p in spec.params.values()] == [tuple(p.shape) for p in model.parameters()]
    assert spec.num_weights == sum(p.numel() for p in model.parameters())
    for p in spec.params.values():
        assert len(p.axes) == len(p.shape)
        assert p.init_std >= 0 and p.scale > 0


@pytest.mark.parametrize("name", TARGETS)
def test_functional_call_with_own_weights_is_exact(name):
    model, inputs = build(name)
    own = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        assert torch.equal(hyperkit.call(model, own, *inputs), model(*inputs))


@pytest.mark.parametrize("name", TARGETS)
def test_gradients_reach_the_generator(name):
    model, inputs = build(name)
    spec = hyperkit.describe(model)
    heads = ["lowrank", "scalar"] if spec.num_weights < 100_000 else ["lowrank"]
    for head in heads:
        gen = hyperkit.Generator(spec, head=head, **SMALL)
        loss = hyperkit.call(model, gen(spec), *inputs).square().mean()
        loss.backward()
        grads = {n: p.grad for n, p in gen.named_parameters()}
        assert grads["context_in.weight"].abs().sum() > 0
        assert grads["out.weight" if head == "scalar" else "out_u.weight"].abs().sum() > 0
        assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)


@pytest.mark.parametrize("name", TARGETS)
def test_init_phase_matches_default_statistics(name):
    model, _ = build(name)
    spec = hyperkit.describe(model)
    gen = hyperkit.Generator(spec, head="lowrank", **SMALL)
    report = hyperkit.init_statistics(gen, spec, steps=400, lr=3e-3)
    assert report.converged, str(report)
    for s in report.stats:
        assert abs(s.mean - s.target_mean) <= 0.1 * s.scale
        assert abs(s.std - s.target_std) <= 0.1 * s.scale
