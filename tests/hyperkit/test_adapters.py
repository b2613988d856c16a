"""hyperkit.adapters: LoRA and FiLM put into a model, described alone, generated from a condition."""

import pytest
import torch
import torch.nn as nn

import hyperkit
from hyperkit.adapters import FiLM, LoRAAttention, LoRAConv, LoRAEmbedding, LoRALinear, add_adapters, merge_adapters


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def test_adapters_start_as_the_identity_and_are_described_alone():
    model, x = small_cnn(), torch.randn(2, 1, 8, 8)
    before = model(x)
    names = add_adapters(model, "film", targets="0", channel_dim=1) + add_adapters(model, "lora", targets="3", rank=2)
    assert names == ["0.film_scale", "0.film_shift", "3.lora_a", "3.lora_b"]
    assert isinstance(model[0], FiLM) and isinstance(model[3], LoRALinear)
    assert torch.equal(model(x), before)  # FiLM's scale 1 and shift 0, LoRA's B zero
    spec = hyperkit.describe(model, include=names)
    assert list(spec.params) == names and spec.num_weights == 4 + 4 + 2 * 144 + 10 * 2
    roles = {n: (p.role, p.init_mean, p.init_std) for n, p in spec.params.items()}
    assert roles["0.film_scale"] == ("film_scale", 1.0, 0.0) and roles["3.lora_b"] == ("lora_b", 0.0, 0.0)
    assert roles["3.lora_a"][2] == pytest.approx(1 / (3 * 144) ** 0.5)
    # the whole adapted model is describable too: the adapted layers keep their own descriptors
    assert hyperkit.describe(model).params["3.base.weight"].role == hyperkit.describe(small_cnn()).params["3.weight"].role


def test_a_generator_emits_only_the_adapters_from_a_condition():
    model, x = small_cnn(), torch.randn(2, 1, 8, 8)
    before = model(x).detach()
    names = add_adapters(model, "lora", rank=2)
    spec = hyperkit.describe(model, include=names)
    gen = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32, condition_size=3)
    report = hyperkit.init_statistics(gen, spec, steps=100, condition=torch.randn(3))
    assert report.converged
    adapted = hyperkit.Generated(gen, model, spec)
    task_a, task_b = torch.randn(3), torch.randn(3)
    out_a = adapted(x, condition=task_a)
    assert (out_a - before).abs().max() < 0.05 * before.abs().max()  # starts near the pretrained model
    assert not torch.allclose(out_a, adapted(x, condition=task_b))  # the condition changes the adapter
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("generator.") for n in trainable)
    exported = {k: v.detach() for k, v in adapted.weights(task_a).items()}  # plain tensors for the base model
    assert sorted(exported) == sorted(names)
    assert torch.allclose(hyperkit.call(model, exported, x), out_a, atol=1e-6)


def test_wrong_adapter_requests_say_what_would_fit():
    with pytest.raises(ValueError, match="unknown adapter kind 'prefix'"):
        add_adapters(small_cnn(), "prefix")
    with pytest.raises(ValueError, match=r"select no Linear, MultiheadAttention, Conv1d, Conv2d or Embedding in Sequential; candidates: 0, 3"):
        add_adapters(small_cnn(), "lora", targets="9")
    with pytest.raises(ValueError, match="rank must be at least 1"):
        LoRALinear(nn.Linear(2, 2), rank=0)


def encoder() -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=True) for _ in range(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(5 * 16, 3))


def randomize(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {n: 0.3 * torch.randn_like(p) for n, p in model.named_parameters() if n in names}


def test_lora_adapts_the_projections_inside_attention():
    model, x = encoder(), torch.randn(4, 5, 16)
    before = model(x).detach()
    names = add_adapters(model, "lora", targets="*.self_attn", rank=2)
    assert names == [f"{i}.self_attn.lora_{p}_{m}" for i in (0, 1) for p in ("in", "out") for m in ("a", "b")]
    assert isinstance(model[0].self_attn, LoRAAttention)
    assert torch.equal(model(x), before)  # B starts at zero
    values = randomize(model, names)
    adapted = hyperkit.call(model, values, x)
    assert (adapted - before).abs().max() > 0.05  # both projections take part
    for which in ("in", "out"):  # each update alone changes the output
        alone = {n: v for n, v in values.items() if f"lora_{which}_" in n}
        assert (hyperkit.call(model, alone, x) - before).abs().max() > 0.01
    # the encoder layer's inference fast path (eval, no grad) reads the updated weights too
    merged = merge_adapters(model, values)
    model.eval(), merged.eval()
    with torch.no_grad():
        fast = hyperkit.call(model, values, x)
        assert torch.allclose(fast, adapted, atol=1e-4)
        assert torch.allclose(merged(x), fast, atol=1e-5)
    spec = hyperkit.describe(model, include=names)
    assert spec.num_weights == 2 * (2 * 16 + 48 * 2 + 2 * 16 + 16 * 2)
    assert spec.params["0.self_attn.lora_in_b"].init_std == 0.0


def test_generated_lora_for_a_transformer_batches_over_tasks():
    model, x = encoder(), torch.randn(4, 5, 16)
    names = add_adapters(model, "lora", rank=2)  # attention and every Linear
    assert "3.lora_a" in names and "0.linear1.lora_b" in names and "0.self_attn.lora_in_a" in names
    spec = hyperkit.describe(model, include=names)
    gen = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32, condition_size=2)
    conditions = torch.randn(3, 2)
    weights = torch.func.vmap(lambda c: gen(spec, c))(conditions)
    batched = hyperkit.vcall(model, weights, x)
    one = hyperkit.call(model, {k: v[1] for k, v in weights.items()}, x)
    assert torch.allclose(batched[1], one, atol=1e-5)


def test_lora_on_an_encoder_layers_linears_keeps_its_inference_fast_path_right():
    model, x = encoder(), torch.randn(4, 5, 16)
    names = add_adapters(model, "lora", targets="*.linear*", rank=2)
    values = randomize(model, names)
    slow = hyperkit.call(model, values, x)  # training mode: the layer calls linear1 and linear2
    model.eval()
    with torch.no_grad():  # the fast path reads linear1.weight and linear2.weight instead
        fast = hyperkit.call(model, values, x)
    assert (slow - hyperkit.call(model, {}, x)).abs().max() > 0.01  # the update matters
    assert torch.allclose(fast, slow, atol=1e-4)


def test_merge_adapters_gives_a_plain_model_that_computes_the_same():
    model, x = small_cnn(), torch.randn(2, 1, 8, 8)
    names = add_adapters(model, "film", targets="0", channel_dim=1) + add_adapters(model, "lora", targets="3", rank=2)
    values = randomize(model, names)
    merged = merge_adapters(model, values)
    assert [type(m) for m in merged] == [nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear]
    assert torch.allclose(merged(x), hyperkit.call(model, values, x), atol=1e-5)
    assert isinstance(model[0], FiLM) and torch.equal(model[0].film_shift, torch.zeros(4))  # model untouched
    # a FiLM around a bias-free Linear gains a bias; one on another channel dimension stays as it is
    lin = nn.Sequential(nn.Linear(3, 4, bias=False))
    add_adapters(lin, "film")
    with torch.no_grad():
        lin[0].film_shift.fill_(0.5)
    assert torch.allclose(merge_adapters(lin)[0].bias, torch.full((4,), 0.5))
    odd = nn.Sequential(nn.Linear(3, 4))
    add_adapters(odd, "film", channel_dim=0)
    assert isinstance(merge_adapters(odd)[0], FiLM)
    with pytest.raises(KeyError, match="no parameter '3.lora_c'"):
        merge_adapters(model, {"3.lora_c": torch.zeros(1)})


def test_attention_lora_refuses_what_it_cannot_adapt():
    with pytest.raises(ValueError, match="kdim == vdim == embed_dim"):
        LoRAAttention(nn.MultiheadAttention(8, 2, kdim=4, vdim=4), rank=2)


def test_lora_on_convolutions_updates_the_kernel_and_folds_back():
    model, x = small_cnn(), torch.randn(2, 1, 8, 8)
    before = model(x).detach()
    names = add_adapters(model, "lora", targets="0", rank=2)
    assert names == ["0.lora_a", "0.lora_b"] and isinstance(model[0], LoRAConv)
    assert model[0].lora_a.shape == (2, 1, 3, 3) and model[0].lora_b.shape == (4, 2)
    assert torch.equal(model(x), before)
    values = randomize(model, names)
    adapted = hyperkit.call(model, values, x)
    # the update is a rank-2 convolution followed by a 1x1 one
    a, b = values["0.lora_a"], values["0.lora_b"]
    by_hand = model[0].base(x) + torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, a), b[:, :, None, None])
    assert torch.allclose(hyperkit.call(model[0], {"lora_a": a, "lora_b": b}, x), by_hand, atol=1e-5)
    merged = merge_adapters(model, values)
    assert type(merged[0]) is nn.Conv2d and torch.allclose(merged(x), adapted, atol=1e-5)
    spec = hyperkit.describe(model, include=names)
    assert spec.num_weights == 2 * 9 + 4 * 2 and spec.params["0.lora_b"].init_std == 0.0
    with pytest.raises(ValueError, match="grouped convolution"):
        LoRAConv(nn.Conv2d(4, 4, 3, groups=2), rank=2)


def test_lora_on_an_embedding_changes_what_each_token_means_and_folds_back():
    model, x = nn.Sequential(nn.Embedding(10, 6, padding_idx=0), nn.Linear(6, 2)), torch.tensor([[0, 3, 3, 9]])
    before = model(x).detach()
    names = add_adapters(model, "lora", targets="0", rank=2, alpha=4)
    assert names == ["0.lora_a", "0.lora_b"] and isinstance(model[0], LoRAEmbedding)
    assert model[0].lora_a.shape == (2, 6) and model[0].lora_b.shape == (10, 2)
    assert torch.equal(model(x), before)
    values = randomize(model, names)
    a, b = values["0.lora_a"], values["0.lora_b"]
    table = model[0].base.weight + 2.0 * b @ a  # alpha / rank = 2
    assert torch.allclose(hyperkit.call(model[0], {"lora_a": a, "lora_b": b}, x), table[x], atol=1e-6)
    merged = merge_adapters(model, values)
    assert type(merged[0]) is nn.Embedding and torch.allclose(merged(x), hyperkit.call(model, values, x), atol=1e-6)
    spec = hyperkit.describe(model, include=names)
    assert spec.num_weights == 2 * 6 + 10 * 2 and spec.params["0.lora_b"].init_std == 0.0
