"""hyperkit.adapters: LoRA and FiLM put into a model, described alone, generated from a condition."""

import pytest
import torch
import torch.nn as nn

import hyperkit
from hyperkit.adapters import FiLM, LoRALinear, add_adapters


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
    with pytest.raises(ValueError, match=r"select no Linear in Sequential; candidates: 3"):
        add_adapters(small_cnn(), "lora", targets="9")
    with pytest.raises(ValueError, match="rank must be at least 1"):
        LoRALinear(nn.Linear(2, 2), rank=0)
