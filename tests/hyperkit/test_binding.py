import pytest
import torch
import torch.nn as nn

import hyperkit


def test_materialize_returns_a_standalone_module():
    model = hyperkit.create_target("cnn_digits").eval()
    spec = hyperkit.describe(model)
    gen = hyperkit.Generator(spec, head="lowrank", width=32, fourier_features=64)
    params = gen(spec)
    standalone = hyperkit.materialize(model, params)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(standalone(x), hyperkit.call(model, params, x), atol=1e-6)
    assert not torch.equal(model.classifier.weight, standalone.classifier.weight)
    assert all(not p.grad_fn for p in standalone.parameters())


def test_generated_dict_for_the_wrong_target_is_refused():
    mlp, cnn = hyperkit.create_target("mlp_tiny"), hyperkit.create_target("cnn_digits")
    gen = hyperkit.Generator(hyperkit.describe(mlp), head="lowrank", width=32, fourier_features=64)
    params = gen()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    for fn in (lambda: hyperkit.call(cnn, params, torch.randn(2, 1, 8, 8)),
               lambda: hyperkit.materialize(cnn, params)):
        with pytest.raises(ValueError, match="not generated for this target"):
            fn()
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())
    wrong_shape = dict(params, **{"net.0.weight": torch.zeros(16, 5)})
    with pytest.raises(ValueError, match=r"net.0.weight: expected \(16, 4\)"):
        hyperkit.call(mlp, wrong_shape, torch.randn(2, 4))


def test_materialize_refuses_a_batch_of_models():
    model = hyperkit.create_target("mlp_tiny")
    params = {n: p.detach().expand(2, *p.shape) for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match="batch dimension"):
        hyperkit.materialize(model, params)
    assert hyperkit.vcall(model, params, torch.randn(5, 4)).shape == (2, 5, 3)


def test_generated_weight_decay_is_the_gradient_of_an_l2_penalty_on_the_matrices():
    torch.manual_seed(0)
    target = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    spec = hyperkit.describe(target)
    generator = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32, rank=4)
    x = torch.randn(5, 6)

    def grads(loss_of):
        generator.zero_grad()
        loss_of().backward()
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in generator.parameters()]

    decayed = hyperkit.Generated(generator, target, weight_decay=0.3)
    plain = hyperkit.Generated(generator, target)
    penalty = lambda: 0.15 * sum((w ** 2).sum() for w in plain.weights().values() if w.dim() == 2)  # noqa: E731
    expected = grads(lambda: plain(x).square().mean() + penalty())  # matrices only: biases are spared
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads(lambda: decayed(x).square().mean()), expected))
    # The penalty matters here (the comparison above is not vacuous); without gradients, no hooks.
    assert not all(torch.allclose(a, b) for a, b in zip(grads(lambda: plain(x).square().mean()), expected))
    with torch.no_grad():
        assert torch.equal(decayed(x), plain(x))
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        hyperkit.Generated(generator, target, weight_decay=-1.0)


@pytest.mark.parametrize("train_own", [False, True])
def test_partial_generation_keeps_the_targets_other_parameters(train_own):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    pretrained = {k: v.clone() for k, v in net.state_dict().items()}
    spec = hyperkit.describe(net, include="2.*")  # generate the last layer only
    gen = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32)
    model = hyperkit.Generated(gen, net, spec, train_own=train_own)
    x = torch.randn(5, 4)
    weights = model.weights()
    assert sorted(weights) == ["2.bias", "2.weight"]
    manual = torch.relu(x @ pretrained["0.weight"].T + pretrained["0.bias"]) @ weights["2.weight"].T + weights["2.bias"]
    assert torch.allclose(model(x), manual, atol=1e-6)
    own = sorted(n for n, p in model.named_parameters() if p.requires_grad and n.startswith("target."))
    assert own == (["target.0.bias", "target.0.weight"] if train_own else [])
    model(x).sum().backward()
    assert (net[0].weight.grad is not None) == train_own and net[2].weight.grad is None
    standalone = model.materialize()
    assert torch.equal(standalone[0].weight, pretrained["0.weight"]) and torch.allclose(standalone(x), model(x))
    with pytest.raises(ValueError, match="unexpected"):  # a name the module lacks is still refused
        hyperkit.call(net, {**weights, "head.weight": torch.zeros(1)}, x)
    # a checkpoint holds both: the generator and the target's own parameters
    fresh_net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    fresh = hyperkit.Generated(hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32, seed=1),
                               fresh_net, spec, train_own=train_own)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(x), model(x))
