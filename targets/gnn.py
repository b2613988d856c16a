"""Graph neural networks from torch_geometric: GCN (Kipf & Welling, 2017) and GAT (Veličković et al., 2018)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from hyperkit.registry import register_target


def random_graph(num_nodes: int, in_channels: int, num_edges: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random node features and an undirected random edge set, for examples and tests."""
    num_edges = num_edges or 3 * num_nodes
    src, dst = torch.randint(0, num_nodes, (2, num_edges))
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    return torch.randn(num_nodes, in_channels), edge_index


class GraphTarget(nn.Module):
    """Base of the node classifiers: message-passing layers with dropout and an activation between."""

    in_channels: int
    convs: nn.ModuleList
    dropout: float

    @staticmethod
    def activation(x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(F.dropout(x, self.dropout, self.training), edge_index)
            if i < len(self.convs) - 1:
                x = self.activation(x)
        return x

    def example_inputs(self, batch: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
        return random_graph(batch, self.in_channels)


class GCN(GraphTarget):
    """Stack of ``GCNConv`` layers with ReLU between them.

    Args:
        in_channels: node feature size.
        hidden_channels: hidden size.
        num_classes: output size.
        num_layers: number of GCNConv layers (≥ 1).
        dropout: dropout between layers.

    Shapes:
        x ``(num_nodes, in_channels)``, edge_index ``(2, num_edges)`` → ``(num_nodes, num_classes)``.

    Example:
        >>> GCN(3, 8, 2)(torch.randn(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 2])
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_classes: int, num_layers: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GCNConv

        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [num_classes]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout, self.in_channels = dropout, in_channels


class GAT(GraphTarget):
    """Stack of ``GATConv`` layers: multi-head (concatenated) hidden layers, averaged output heads.

    Args:
        in_channels: node feature size.
        hidden_channels: per-head hidden size.
        num_classes: output size.
        heads: attention heads in hidden layers.
        num_layers: number of GATConv layers (≥ 1).
        dropout: dropout on features and attention coefficients.

    Shapes:
        x ``(num_nodes, in_channels)``, edge_index ``(2, num_edges)`` → ``(num_nodes, num_classes)``.

    Example:
        >>> GAT(3, 4, 2, heads=2)(torch.randn(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 2])
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_classes: int, heads: int = 4,
                 num_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GATConv

        convs, prev = [], in_channels
        for _ in range(num_layers - 1):
            convs.append(GATConv(prev, hidden_channels, heads=heads, dropout=dropout))
            prev = hidden_channels * heads
        convs.append(GATConv(prev, num_classes, heads=1, concat=False, dropout=dropout))
        self.convs = nn.ModuleList(convs)
        self.dropout, self.in_channels = dropout, in_channels

    @staticmethod
    def activation(x: torch.Tensor) -> torch.Tensor:
        return F.elu(x)


@register_target
def gcn_small(in_channels: int = 16, hidden_channels: int = 16, num_classes: int = 3, **kw) -> GCN:
    """Two-layer GCN (Kipf & Welling's setting)."""
    return GCN(in_channels, hidden_channels, num_classes, num_layers=2, **kw)


@register_target
def gcn_deep(in_channels: int = 16, hidden_channels: int = 32, num_classes: int = 3, **kw) -> GCN:
    """Four-layer GCN."""
    return GCN(in_channels, hidden_channels, num_classes, num_layers=4, **kw)


@register_target
def gat_small(in_channels: int = 16, hidden_channels: int = 8, num_classes: int = 3, heads: int = 4, **kw) -> GAT:
    """Two-layer GAT with 4 heads of 8 channels (Veličković et al.'s Cora setting)."""
    return GAT(in_channels, hidden_channels, num_classes, heads=heads, num_layers=2, **kw)


@register_target
def gat_deep(in_channels: int = 16, hidden_channels: int = 8, num_classes: int = 3, heads: int = 4, **kw) -> GAT:
    """Three-layer GAT."""
    return GAT(in_channels, hidden_channels, num_classes, heads=heads, num_layers=3, **kw)
