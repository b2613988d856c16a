import pytest
import torch
import torch.nn as nn

import hyperkit
from hyperkit.descriptors import AXIS_FIELDS, CONTEXT_FIELDS, stable_id


class Unregistered(nn.Module):
    """A module defined only here: built from supported layers, never registered."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 6, 3, padding=1)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 2)

    def forward(self, tokens):
        x = self.conv(self.embed(tokens).transpose(1, 2)).transpose(1, 2)
        return self.head(self.norm(x).mean(1))


def test_unregistered_module_is_described_and_generated():
    model = Unregistered()
    spec = hyperkit.describe(model, task={"num_classes": 2})
    assert [l.type for l in spec.layers] == ["embedding", "conv1d", "layernorm", "linear"]
    assert spec.params["conv.weight"].axes[2][0].field == "k0"
    assert spec.params["norm.weight"].init_mean == 1.0
    assert spec.task == {"num_classes": 2.0}
    gen = hyperkit.Generator(spec, head="scalar", width=16, fourier_features=32, num_blocks=1)
    out = hyperkit.call(model, gen(spec), torch.randint(0, 10, (3, 5)))
    assert out.shape == (3, 2) and torch.isfinite(out).all()


def test_attention_rows_map_to_block_head_and_row():
    spec = hyperkit.describe(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True))
    p = spec.params["self_attn.in_proj_weight"]
    block, head, row = (a.values(24) for a in p.axes[0])
    assert block.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    assert head.tolist()[:8] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert row.tolist()[:8] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert spec.params["self_attn.out_proj.weight"].axes[1][0].field == "head"
    assert {l.type for l in spec.layers} == {"attention", "linear", "layernorm"}
    assert spec.layers[0].structure["heads"] == 2


def test_tied_parameters_are_generated_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(7, 4)
            self.out = nn.Linear(4, 7, bias=False)
            self.out.weight = self.embed.weight

        def forward(self, t):
            return self.out(self.embed(t))

    model = Tied()
    spec = hyperkit.describe(model)
    assert list(spec.params) == ["embed.weight"]
    assert spec.params["embed.weight"].aliases == ("out.weight",)
    gen = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32)
    params = gen(spec)
    tokens = torch.tensor([[1, 2]])
    expected = params["embed.weight"][tokens] @ params["embed.weight"].T
    assert torch.allclose(hyperkit.call(model, params, tokens), expected, atol=1e-6)


def test_descriptors_are_deterministic():
    a = hyperkit.describe(hyperkit.create_target("cnn_digits"))
    b = hyperkit.describe(hyperkit.create_target("cnn_digits"))
    assert a.key() == b.key()
    assert [a.context(n) for n in a.params] == [b.context(n) for n in b.params]
    assert 0 <= stable_id("linear") < 997 and stable_id("linear") != stable_id("conv2d")
    assert len(CONTEXT_FIELDS) + len(AXIS_FIELDS) == 23


def test_context_fields_hold_layer_global_and_task_structure():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"), task={"task": 3, "input_size": 4})
    ctx = dict(zip(CONTEXT_FIELDS, spec.context("net.2.weight")))
    assert ctx["layer"] == 1 and ctx["depth"] == 1.0
    assert ctx["in_size"] == 16 and ctx["out_size"] == 3
    assert ctx["num_layers"] == 2 and ctx["num_params"] == 131
    assert ctx["task"] == 3 and ctx["input_size"] == 4
    assert ctx["layer_type"] == stable_id("linear") and ctx["role"] == stable_id("weight")


def test_register_layer_adds_a_new_layer_type():
    class Gain(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(n))

        def forward(self, x):
            return x * self.gain

    with pytest.raises(TypeError, match=r"register_layer\(Gain\)"):
        hyperkit.describe(nn.Sequential(nn.Linear(3, 3), Gain(3)))

    @hyperkit.register_layer(Gain, "gain")
    def describe_gain(m):
        return hyperkit.LayerDescription({"in_size": 3, "out_size": 3},
                                         {"gain": hyperkit.ParamInfo("norm_scale", ("row",), mean=1.0, std=0.0)})

    spec = hyperkit.describe(nn.Sequential(nn.Linear(3, 3), Gain(3)))
    assert spec.params["1.gain"].layer_type == "gain"


def test_bad_modules_get_clear_errors():
    with pytest.raises(ValueError, match="track_running_stats=False"):
        hyperkit.describe(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    with pytest.raises(ValueError, match="no parameters"):
        hyperkit.describe(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="lazy"):
        hyperkit.describe(nn.LazyLinear(3))
    with pytest.raises(TypeError, match=r"0 \(torch.nn.modules.rnn.GRU\)"):
        hyperkit.describe(nn.Sequential(nn.GRU(3, 4)))
    with pytest.raises(ValueError, match="unknown task field"):
        hyperkit.describe(nn.Linear(2, 2), task={"colour": 1})
    spec = hyperkit.describe(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False)))
    assert spec.params["1.weight"].role == "norm_scale"


def test_kernel_taps_are_offsets_from_the_centre():
    def taps(k):
        spec = hyperkit.describe(nn.Conv2d(2, 3, k))
        (axis,) = spec.params["weight"].axes[2]
        return axis.values(k).tolist()

    assert taps(3) == [-1.0, 0.0, 1.0] and taps(5) == [-2.0, -1.0, 0.0, 1.0, 2.0]


def test_include_selects_parameters_by_glob_type_or_predicate():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 2))
    assert list(hyperkit.describe(net, include="3.*").params) == ["3.weight", "3.bias"]
    assert list(hyperkit.describe(net, include=["0.weight", "3.bias"]).params) == ["0.weight", "3.bias"]
    assert list(hyperkit.describe(net, include=nn.LayerNorm).params) == ["2.weight", "2.bias"]
    assert list(hyperkit.describe(net, include=lambda name, p: p.dim() == 2).params) == ["0.weight", "3.weight"]
    full, part = hyperkit.describe(net), hyperkit.describe(net, include="3.*")
    assert part.params["3.weight"] == full.params["3.weight"]  # described as in the whole module
    assert part.layers == full.layers and part.num_weights == 18
    with pytest.raises(ValueError, match=r"selects no parameter of Sequential; its parameters: 0.weight"):
        hyperkit.describe(net, include="head.*")
    with pytest.raises(TypeError, match="a glob, a list of globs"):
        hyperkit.describe(net, include=3)
