"""The analytic default-init statistics of the built-in describers equal measured ones."""

import pytest
import torch
import torch.nn as nn
from torch_geometric.nn import GATConv, GCNConv

import hyperkit

LAYERS = {
    "linear": lambda: nn.Linear(24, 10),
    "conv1d": lambda: nn.Conv1d(6, 8, 5),
    "conv2d": lambda: nn.Conv2d(3, 8, 3, groups=1),
    "conv2d_groups": lambda: nn.Conv2d(4, 8, 3, groups=2),
    "embedding": lambda: nn.Embedding(50, 12),
    "layernorm": lambda: nn.LayerNorm(12),
    "attention": lambda: nn.MultiheadAttention(16, 4),
    "attention_kdim": lambda: nn.MultiheadAttention(16, 4, kdim=8, vdim=12, add_bias_kv=True),
    "gcn": lambda: GCNConv(12, 16),
    "gat": lambda: GATConv(12, 8, heads=4),
    "gat_edge_residual": lambda: GATConv(12, 6, heads=2, edge_dim=3, residual=True, concat=False),
}


def _measured(factory, rel, samples=100_000, max_layers=400):
    # Fresh constructions, not reset_parameters(): MultiheadAttention's reset leaves out_proj.weight.
    values = []
    while sum(v.numel() for v in values) < samples and len(values) < max_layers:
        torch.manual_seed(len(values))
        values.append(factory().get_parameter(rel).detach().flatten())
    flat = torch.cat(values).double()
    return flat.mean().item(), flat.std(unbiased=False).item()


@pytest.mark.parametrize("kind", LAYERS)
def test_analytic_init_statistics_match_measured(kind):
    spec = hyperkit.describe(nn.ModuleList([LAYERS[kind]()]))
    for name, p in spec.params.items():
        mean, std = _measured(LAYERS[kind], name.split(".", 1)[1])
        assert abs(p.init_std - std) <= 0.02 * max(p.init_std, 1e-3) + 1e-6, name
        assert abs(p.init_mean - mean) <= 0.03 * max(p.init_std, 1e-3) + 1e-6, name


def test_describing_a_target_without_graph_layers_does_not_import_torch_geometric():
    # torch_geometric's import takes seconds; its describers are registered on first use.
    import subprocess
    import sys

    code = ("import sys, torch.nn as nn, hyperkit; "
            "hyperkit.describe(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))); "
            "print('torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_subclass_of_a_graph_layer_is_described_through_its_base():
    class Custom(GCNConv):
        pass

    spec = hyperkit.describe(nn.ModuleList([Custom(3, 4)]))
    assert set(spec.params) == {"0.lin.weight", "0.bias"}
    assert spec.layers[0].type == "gcn"
