import warnings

import pytest
import torch
import torch.nn as nn

import hyperkit
from hyperkit.heads.scalar import trunk_inputs

SMALL = dict(width=32, fourier_features=64, num_blocks=1)


@pytest.fixture
def cnn():
    model = hyperkit.create_target("cnn_digits").eval()
    return model, hyperkit.describe(model)


@pytest.mark.parametrize("head", ["scalar", "lowrank"])
def test_chunked_generation_equals_unchunked(cnn, head):
    _, spec = cnn
    gen = hyperkit.Generator(spec, head=head, chunk_size=None, **SMALL)
    whole = gen.flat(spec)
    for chunk, ckpt in ((257, False), (1000, True)):
        gen.chunk_size, gen.checkpoint = chunk, ckpt
        chunked = gen.flat(spec)
        assert torch.allclose(whole, chunked, atol=1e-6)
    # gradients through checkpointed chunks equal the unchunked ones
    gen.chunk_size, gen.checkpoint = 300, True
    gen.flat(spec).square().sum().backward()
    g1 = gen.context_in.weight.grad.clone()
    gen.zero_grad()
    gen.chunk_size, gen.checkpoint = None, False
    gen.flat(spec).square().sum().backward()
    assert torch.allclose(g1, gen.context_in.weight.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("head", ["scalar", "lowrank"])
def test_generator_size_does_not_depend_on_target(head):
    small = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    large = hyperkit.describe(hyperkit.create_target("mlp_mnist"))
    count = lambda g: sum(p.numel() for p in g.parameters())  # noqa: E731
    assert count(hyperkit.Generator(small, head=head)) == count(hyperkit.Generator(large, head=head))


def test_flat_head_size_grows_with_target():
    small = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    gen = hyperkit.Generator(small, head="flat", width=16, condition_size=5)
    assert gen.out.weight.shape == (small.num_weights, 16)
    with pytest.raises(ValueError, match="built for another target"):
        gen.flat(hyperkit.describe(hyperkit.create_target("mlp_digits")), torch.zeros(5))


@pytest.mark.parametrize("head", ["scalar", "lowrank", "flat"])
def test_batched_conditions_and_vmap(head):
    model = hyperkit.create_target("mlp_tiny")
    spec = hyperkit.describe(model)
    gen = hyperkit.Generator(spec, head=head, condition_size=3, **SMALL)
    cond = torch.randn(4, 3)
    batched = gen(spec, cond)
    assert batched["net.0.weight"].shape == (4, 16, 4)
    single = gen(spec, cond[2])
    assert torch.allclose(batched["net.0.weight"][2], single["net.0.weight"], atol=1e-6)
    assert not torch.allclose(batched["net.0.weight"][0], batched["net.0.weight"][1])
    x = torch.randn(7, 4)
    out = hyperkit.vcall(model, batched, x)
    assert out.shape == (4, 7, 3)
    assert torch.allclose(out[2], hyperkit.call(model, single, x), atol=1e-5)


def test_condition_of_wrong_shape_is_refused():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    gen = hyperkit.Generator(spec, condition_size=3, **SMALL)
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    for bad in (torch.zeros(4), torch.zeros(2, 2, 3), None):
        with pytest.raises(ValueError, match=r"condition must have shape \(3,\)"):
            gen(spec, bad)
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())
    with pytest.raises(ValueError, match="takes no condition"):
        hyperkit.Generator(spec, **SMALL)(spec, torch.zeros(3))


def test_out_of_range_descriptors_warn_once():
    small = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    gen = hyperkit.Generator(small, head="lowrank", **SMALL)
    wide = hyperkit.describe(hyperkit.create_target("mlp_digits"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gen(wide)
        gen(wide)
    messages = [str(w.message) for w in caught]
    assert any("'row'" in m and "outside the range" in m for m in messages)
    assert len(messages) == len(set(messages))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hyperkit.Generator([small, wide], head="lowrank", **SMALL)(wide)


def test_state_dict_round_trip_keeps_ranges_and_outputs():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    gen = hyperkit.Generator(spec, head="scalar", **SMALL)
    other_spec = hyperkit.describe(hyperkit.create_target("mlp_digits"))
    other = hyperkit.Generator(other_spec, head="scalar", **SMALL)
    other.load_state_dict(gen.state_dict())
    assert other.normalizer.ranges() == gen.normalizer.ranges()
    assert torch.allclose(other.flat(spec), gen.flat(spec))


def test_scalar_head_init_and_training_step_reduce_loss():
    model = hyperkit.create_target("mlp_tiny")
    spec = hyperkit.describe(model)
    gen = hyperkit.Generator(spec, head="scalar", **SMALL)
    report = hyperkit.init_statistics(gen, spec, steps=400, lr=3e-3)
    assert report.converged, str(report)
    x = torch.randn(64, 4)
    y = (x @ torch.randn(4, 3)).argmax(1)  # a learnable (linear) labelling
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = nn.functional.cross_entropy(hyperkit.call(model, gen(spec), x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_structure_encoder_starts_as_a_no_op():
    spec = hyperkit.describe(hyperkit.create_target("transformer_tiny"))
    plain = hyperkit.Generator(spec, head="lowrank", **SMALL)
    torch.manual_seed(0)
    with_structure = hyperkit.Generator(spec, head="lowrank", structure_encoder=True, **SMALL)
    with_structure.load_state_dict(plain.state_dict(), strict=False)
    assert torch.allclose(plain.flat(spec), with_structure.flat(spec), atol=1e-6)
    with_structure.flat(spec).sum().backward()
    assert with_structure.structure.mlp[-1].weight.grad.abs().sum() > 0


def _lowrank_reference(gen, spec, cond=None):
    """The low-rank head written tensor by tensor (the batched head must equal it)."""
    base, contrib = trunk_inputs(gen, spec, gen.project_condition(cond))
    pieces = []
    for t, p in enumerate(spec.params.values()):
        b = base[..., t, :]
        if len(p.shape) == 0:
            pieces.append(gen.out(gen.trunk(b)))
            continue
        row = gen.trunk(b.unsqueeze(-2) + gen.side.weight[0] + (contrib[t][0] if contrib[t][0] is not None else 0))
        if len(p.shape) == 1:
            pieces.append(gen.out(row).squeeze(-1).expand(*b.shape[:-1], p.shape[0]))
            continue
        grid = torch.ones(p.shape[1:] + (gen.width,))
        has_field = False
        for d in range(1, len(p.shape)):
            if contrib[t][d] is not None:
                has_field = True
                grid = grid * contrib[t][d].view(*[-1 if k == d - 1 else 1 for k in range(len(p.shape) - 1)], gen.width)
        col = gen.trunk(b.unsqueeze(-2) + gen.side.weight[1] + (grid.reshape(-1, gen.width) if has_field else 0))
        u, v = gen.out_u(row.expand(*b.shape[:-1], p.shape[0], gen.width)), gen.out_v(col)
        (u, a), (v, c) = u.split([gen.rank, 1], -1), v.split([gen.rank, 1], -1)
        u = u - u.mean(-2, keepdim=True) if p.shape[0] > 1 else u
        v = v - v.mean(-2, keepdim=True) if v.shape[-2] > 1 else v
        w = u @ v.transpose(-1, -2) / gen.rank ** 0.5 + a / v.shape[-2] ** 0.5 + c.transpose(-1, -2) / u.shape[-2] ** 0.5
        pieces.append(w.flatten(-2))
    return gen.rescale(spec, torch.cat(pieces, dim=-1))


@pytest.mark.parametrize("name", ["mlp_tiny", "cnn_digits", "gat_small", "transformer_tiny"])
def test_batched_lowrank_head_equals_per_tensor_reference(name):
    spec = hyperkit.describe(hyperkit.create_target(name))
    torch.manual_seed(0)
    gen = hyperkit.Generator(spec, head="lowrank", condition_size=3, rank=4, **SMALL)
    with torch.no_grad():  # the row and column offsets start at zero: make them count
        gen.out_u.weight[-1].normal_()
        gen.out_v.bias[-1].fill_(0.5)
    cond = torch.randn(2, 3)
    assert torch.allclose(gen.flat(spec, cond), _lowrank_reference(gen, spec, cond), atol=1e-6)
    plain = hyperkit.Generator(spec, head="lowrank", rank=4, **SMALL)
    assert torch.allclose(plain.flat(spec), _lowrank_reference(plain, spec), atol=1e-6)


def test_lowrank_offsets_start_at_zero_and_learn_row_and_column_sums():
    spec = hyperkit.describe(nn.Linear(12, 8, bias=False))
    torch.manual_seed(0)
    gen = hyperkit.Generator(spec, head="lowrank", rank=4, **SMALL)
    weight = gen(spec)["weight"]
    mean = spec.params["weight"].init_mean
    # At construction the factors are centred and the offsets zero: every row and column sums to zero.
    assert torch.allclose((weight - mean).sum(0), torch.zeros(12), atol=1e-5)
    assert torch.allclose((weight - mean).sum(1), torch.zeros(8), atol=1e-5)
    # A target whose rows and columns have their own means: the offsets fit them.
    wanted = mean + spec.params["weight"].scale * (torch.linspace(-2, 2, 8)[:, None] + torch.linspace(1, -1, 12))
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    # The step decays to zero: at a constant 1e-2 Adam keeps overshooting, and the last step's loss
    # swings between 1e-4 and 3e-2 with the seed and the machine's float rounding.
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / 300)
    for _ in range(300):
        loss = (gen(spec)["weight"] - wanted).pow(2).mean() / wanted.var()
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
    assert loss.item() < 1e-3


@pytest.mark.parametrize("target", [nn.LayerNorm(5), nn.Linear(3, 4, bias=False), nn.Conv1d(2, 3, 1, bias=False)])
def test_lowrank_head_on_targets_with_only_vectors_or_only_matrices(target):
    spec = hyperkit.describe(target)
    gen = hyperkit.Generator(spec, head="lowrank", **SMALL)
    params = gen(spec)
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in target.named_parameters()}
    assert torch.allclose(gen.flat(spec), _lowrank_reference(gen, spec), atol=1e-6)


def test_fourier_cache_follows_buffers_and_holds_no_graph():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    gen = hyperkit.Generator(spec, head="lowrank", **SMALL)
    first = gen.flat(spec)
    cached = gen.plans.lookup(spec, "fourier")
    assert cached["context"].grad_fn is None and not cached["context"].requires_grad
    assert all(x.grad_fn is None for x in cached["axes"].values())
    # In-place buffer changes (load_state_dict) rebuild the features: ranges of another target.
    wide = hyperkit.Generator(hyperkit.describe(hyperkit.create_target("mlp_digits")), head="lowrank", **SMALL)
    wide.load_state_dict(gen.state_dict(), strict=False)
    other = hyperkit.Generator(hyperkit.describe(hyperkit.create_target("mlp_digits")), head="lowrank", **SMALL)
    gen.load_state_dict({k: v for k, v in other.state_dict().items() if k.startswith("normalizer")}, strict=False)
    after = gen.flat(spec)
    assert not torch.allclose(first, after)
    assert torch.equal(after, gen.flat(spec))
    fresh = hyperkit.describe(hyperkit.create_target("mlp_tiny"))  # an empty cache
    assert torch.allclose(after, gen.flat(fresh), atol=1e-6)
    # Moving to another dtype replaces the buffers: features follow in that dtype.
    double = gen.double().flat(spec)
    assert double.dtype == torch.float64 and torch.allclose(double.float(), after, atol=1e-5)


def test_generation_in_inference_mode_first_then_training():
    model = hyperkit.create_target("mlp_tiny")
    spec = hyperkit.describe(model)
    for head in ("lowrank", "scalar"):
        gen = hyperkit.Generator(spec, head=head, **SMALL)
        with torch.inference_mode():
            evaluated = gen.flat(spec)
        loss = hyperkit.call(model, gen(spec), torch.randn(5, 4)).square().mean()
        loss.backward()
        assert gen.context_in.weight.grad.abs().sum() > 0
        assert torch.allclose(evaluated, gen.flat(spec))


def test_row_correlation_is_one_for_random_rows_and_large_for_shared_directions():
    from hyperkit.initialization import row_correlation

    torch.manual_seed(0)
    random = row_correlation({"w": torch.randn(200, 32, 48)})["w"]
    shared = row_correlation({"w": torch.randn(32, 1) @ torch.randn(1, 48) + 0.1 * torch.randn(32, 48)})["w"]
    assert abs(random.item() - 1) < 0.05 and shared.item() > 20
    assert row_correlation({"few_rows": torch.randn(3, 48)}) == {}


def test_init_decorrelates_generated_rows():
    from hyperkit.initialization import _correlations

    spec = hyperkit.describe(hyperkit.create_target("mlp_digits"))
    reports, worst = {}, {}
    for weight in (0.0, 1.0):  # 0: UHN's L_init alone
        torch.manual_seed(0)
        gen = hyperkit.Generator(spec, head="lowrank", width=64, fourier_features=512, rank=64)
        reports[weight] = hyperkit.init_statistics(gen, spec, steps=400, lr=3e-3, decorrelate=weight)
        worst[weight] = max(_correlations(gen, [spec], 64, None, torch.Generator().manual_seed(0)).values())
    assert reports[0.0].correlation == {} and reports[1.0].converged and reports[1.0].decorrelated
    assert worst[1.0] < 2 < 4 < worst[0.0]


@pytest.mark.parametrize("head, structure, shared", [("lowrank", False, False), ("lowrank", True, False),
                                                     ("scalar", False, False), ("lowrank", True, True)])
def test_generate_many_equals_one_at_a_time_and_shares_equal_targets(head, structure, shared):
    specs = [hyperkit.describe(hyperkit.create_target(name)) for name in ("mlp_tiny", "cnn_digits", "mlp_tiny")]
    torch.manual_seed(0)
    gen = hyperkit.Generator(specs[:2], head=head, condition_size=3, structure_encoder=structure,
                             shared_trunk=shared, **SMALL)
    if structure:  # its last layer starts at zero: make the structure code matter
        torch.nn.init.normal_(gen.structure.mlp[-1].weight)
    if shared:  # the modulation starts as the identity: make it matter
        torch.nn.init.normal_(gen.film.weight, std=0.05)
    task_a, task_b = torch.randn(3), torch.randn(3)
    conditions = [task_a, task_b, task_a]
    many = gen.generate_many(specs, conditions)
    assert many[0] is many[2]  # same descriptors, same condition: generated once
    for spec, condition, params in zip(specs, conditions, many):
        single = gen(spec, condition)
        assert params.keys() == single.keys()
        # batched and single matmuls round differently (features.0.weight reaches 58 here): relative
        scale = {k: single[k].detach().abs().max() for k in params}
        assert all(torch.allclose(params[k], single[k], atol=1e-6 * scale[k] + 1e-6) for k in params)
    different = gen.generate_many(specs[:1] * 2, [task_a, task_b])
    assert not torch.allclose(different[0]["net.0.weight"], different[1]["net.0.weight"])
    with pytest.raises(ValueError, match="one per spec"):
        gen.generate_many(specs, [task_a])


def test_generate_many_batches_gradients_like_one_at_a_time():
    specs = [hyperkit.describe(hyperkit.create_target("mlp_digits", hidden=[h] * d, in_features=8, num_classes=3))
             for h, d in ((8, 1), (16, 2), (12, 3))]
    torch.manual_seed(0)
    gen = hyperkit.Generator(specs, head="lowrank", structure_encoder=True, **SMALL)
    grads = []
    for generate in (lambda: gen.generate_many(specs), lambda: [gen(s) for s in specs]):
        gen.zero_grad()
        sum((p ** 2).sum() for d in generate() for p in d.values()).backward()
        grads.append({n: p.grad.clone() for n, p in gen.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    assert all(torch.allclose(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6) for n in grads[0])


def test_context_sigma_sets_only_the_context_encoding():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    gen = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=2048, context_sigma=0.05)
    same = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=2048)
    assert gen.context_features.B.std().item() == pytest.approx(0.05, rel=0.1)
    assert torch.equal(gen.axis_features["row"].B, same.axis_features["row"].B)
    assert same.context_features.B.std().item() == pytest.approx(1.0, rel=0.1)


def test_centred_scalar_head_keeps_each_matrix_at_its_init_mean():
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    spec = hyperkit.describe(model)
    torch.manual_seed(0)
    plain = hyperkit.Generator(spec, head="scalar", **SMALL)
    centred = hyperkit.Generator(spec, head="scalar", center=True, **SMALL)
    centred.load_state_dict(plain.state_dict())
    with torch.no_grad():  # a shift shared by every weight: the uncentred matrices move with it
        for gen in (plain, centred):
            gen.out.bias.add_(5.0)
    before, after = plain(spec), centred(spec)
    for name, p in spec.params.items():
        if after[name].dim() >= 2:
            assert abs(after[name].mean().item() - p.init_mean) < 1e-6
            assert abs(before[name].mean().item() - p.init_mean) > 1.0 * p.scale
            assert torch.allclose(after[name] - after[name].mean(), before[name] - before[name].mean(), atol=1e-5)
        else:  # vectors (biases) are not centred
            assert torch.allclose(after[name], before[name])
    # random_values() then generates everything, so it agrees with the full generation
    picks = centred.random_values(spec, per_tensor=5, generator=torch.Generator().manual_seed(0))
    flat = centred.flat(spec)
    for name, values in picks.items():
        assert torch.isin(values, flat[spec.offsets[name]: spec.offsets[name] + spec.params[name].numel]).all()
    assert "center=True" in repr(centred)


def test_shared_trunk_runs_each_distinct_row_once_and_equals_the_unshared_computation():
    # Two MLPs that share their first layer's sizes: its rows and columns are computed once.
    specs = [hyperkit.describe(hyperkit.create_target("mlp_digits", hidden=hidden, in_features=8, num_classes=3))
             for hidden in ([16], [16, 16])]
    torch.manual_seed(0)
    gen = hyperkit.Generator(specs, head="lowrank", structure_encoder=True, shared_trunk=True, condition_size=2, **SMALL)
    torch.nn.init.normal_(gen.film.weight, std=0.05)
    torch.nn.init.normal_(gen.structure.mlp[-1].weight)
    merged = gen.plans.merged(specs)
    plan = gen.head.plan(gen, merged)
    condition = torch.randn(4, 2)  # a batch of conditions: the trunk still runs once per distinct row
    counts = torch.tensor([len(s.params) for s in specs])
    cond = gen.project_condition(condition).unsqueeze(-2).expand(-1, int(counts.sum()), -1)  # per tensor
    rows = []
    hook = gen.trunk.register_forward_hook(lambda module, args, out: rows.append(tuple(args[0].shape)))
    actual = gen.head.emit(gen, merged, cond)
    hook.remove()
    assert rows == [(int(plan["shared"]["inverse"].max()) + 1, SMALL["width"])]
    assert rows[0][0] < len(plan["tensor"])
    # Reference: every row through the trunk, then the same modulation.
    h = gen.trunk(gen.head.trunk_inputs(gen, merged, None, plan))
    gamma, beta = gen.modulation(merged, cond)
    expected = gen.head.output(gen, plan, h * (1 + gamma[..., plan["tensor"], :]) + beta[..., plan["tensor"], :])
    assert actual.shape == (4, merged.num_weights) and torch.allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # The conditions and the architectures still make a difference.
    many = gen.generate_many(specs, [condition[0], condition[0]])
    other = gen.generate_many(specs, [condition[1], condition[1]])
    assert not torch.allclose(many[0]["net.0.weight"], other[0]["net.0.weight"])
    assert not torch.allclose(many[0]["net.0.weight"], many[1]["net.0.weight"])
    with pytest.raises(ValueError, match="shared_trunk needs head='lowrank'"):
        hyperkit.Generator(specs, head="scalar", shared_trunk=True, **SMALL)
