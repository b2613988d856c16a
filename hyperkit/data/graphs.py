"""Node-classification graphs: Zachary's karate club, a stochastic block model, Planetoid.

Nothing here downloads: the karate club ships inside torch_geometric, the block model is
generated, and Planetoid is read only when its raw files are already on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperkit.data._common import find_files, int64_tensor, stratified_split
from hyperkit.data.registry import register_dataset
from hyperkit.data.types import GraphData

PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@register_dataset
def karate(train_fraction: float = 0.5, seed: int = 0) -> GraphData:
    """Zachary's karate club (34 nodes, 156 directed edges, 4 communities), split per class.

    torch_geometric labels only 4 nodes; we split all 34 nodes instead, keeping
    ``train_fraction`` of every community for training (rounded, at least one on each side).

    Args:
        train_fraction: share of each class used for training (default 0.5: 18 of 34 nodes).
        seed: seed of the split.

    Shapes:
        x ``(34, 34)`` one-hot node ids, edge_index ``(2, 156)``, y and masks ``(34,)``.

    Example:
        >>> graph = karate()
        >>> int(graph.train_mask.sum()), int(graph.test_mask.sum()), graph.num_classes
        (18, 16, 4)
    """
    from torch_geometric.datasets import KarateClub  # bundled with torch_geometric: no download

    data = KarateClub()[0]
    labels = data.y.numpy()
    train, test = stratified_split(labels, train_fraction, np.random.default_rng(seed))
    return _graph_data(data.x, data.edge_index, labels, train, test, int(labels.max()) + 1)


@register_dataset
def sbm(num_nodes: int = 300, num_classes: int = 3, p_in: float = 0.1, p_out: float = 0.01,
        feature_dim: int = 16, feature_noise: float = 1.0, train_fraction: float = 0.5,
        seed: int = 0) -> GraphData:
    """A stochastic-block-model graph (Holland et al., 1983) with noisy class-dependent features.

    Nodes of a class link with probability ``p_in``, of different classes with ``p_out``.
    Node features are ``x_i = μ_{y_i} + feature_noise · ε_i`` with unit-norm random class means
    ``μ_c`` and ``ε_i ~ N(0, I)``. With the defaults a node's own features identify its class
    only about 60 % of the time, while averaging over its (mostly same-class) neighbours lifts
    that above 90 %, so a GCN beats an MLP. The same seed gives the same graph, features, split.

    Args:
        num_nodes: number of nodes (default 300), classes as balanced as possible.
        num_classes: number of blocks/classes (default 3).
        p_in: edge probability within a class (default 0.1).
        p_out: edge probability between classes (default 0.01).
        feature_dim: feature size (default 16).
        feature_noise: standard deviation of the feature noise (default 1.0); larger is harder.
        train_fraction: share of each class used for training (default 0.5).
        seed: seed of graph, features and split.

    Shapes:
        x ``(num_nodes, feature_dim)``, edge_index ``(2, E)``, y and masks ``(num_nodes,)``.

    Example:
        >>> graph = sbm(num_nodes=60, num_classes=3, seed=1)
        >>> graph.x.shape, graph.num_classes
        (torch.Size([60, 16]), 3)
    """
    _check_sbm_arguments(num_nodes, num_classes, p_in, p_out)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_nodes) % num_classes)
    edge_index = _sbm_edges(labels, num_classes, p_in, p_out, rng)
    means = rng.standard_normal((num_classes, feature_dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    features = means[labels] + feature_noise * rng.standard_normal((num_nodes, feature_dim))
    train, test = stratified_split(labels, train_fraction, rng)
    return _graph_data(torch.from_numpy(features), torch.from_numpy(edge_index), labels,
                       train, test, num_classes)


def _check_sbm_arguments(num_nodes: int, num_classes: int, p_in: float, p_out: float) -> None:
    if num_classes < 2 or num_nodes < 2 * num_classes:
        raise ValueError(f"sbm needs num_classes >= 2 and at least two nodes per class, got "
                         f"num_nodes={num_nodes}, num_classes={num_classes}")
    if not (0.0 <= p_in <= 1.0 and 0.0 <= p_out <= 1.0):
        raise ValueError(f"p_in and p_out are probabilities in [0, 1], got {p_in}, {p_out}")


def _sbm_edges(labels: np.ndarray, num_classes: int, p_in: float, p_out: float,
               rng: np.random.Generator) -> np.ndarray:
    """Sample each block pair's edges as a Binomial count of distinct cells (memory ∝ edges, not
    nodes²). Returns each undirected edge once; ``_graph_data`` adds the reverse direction."""
    members = [np.flatnonzero(labels == c) for c in range(num_classes)]
    sources, targets = [], []
    for a in range(num_classes):
        for b in range(a, num_classes):
            rows, cols = members[a], members[b]
            num_cells = len(rows) * len(cols)
            picked = rng.choice(num_cells, rng.binomial(num_cells, p_in if a == b else p_out),
                                replace=False)
            i, j = rows[picked // len(cols)], cols[picked % len(cols)]
            # Within a block every pair is a cell twice (i, j) and (j, i): keeping i < j gives each
            # pair one chance with probability p and drops self-loops. Across blocks it is once.
            keep = i < j if a == b else np.ones(len(i), dtype=bool)
            sources.append(i[keep])
            targets.append(j[keep])
    return np.stack([np.concatenate(sources), np.concatenate(targets)]).astype(np.int64)


@register_dataset
def planetoid(root: str | Path, dataset: str = "Cora") -> GraphData:
    """A Planetoid citation graph (Cora, CiteSeer, PubMed; Yang et al., 2016) with its public split.

    Read through torch_geometric's ``Planetoid`` only when the raw files already exist, because
    otherwise it would download them. The public validation nodes are in neither mask.

    Args:
        root: folder holding ``<dataset>/raw/ind.<dataset>.{x,tx,allx,y,ty,ally,graph,test.index}``
            (torch_geometric's layout); the processed tensors are cached in ``<dataset>/processed``.
        dataset: ``"Cora"``, ``"CiteSeer"`` or ``"PubMed"`` (default ``"Cora"``); not ``name``,
            which a config's data spec uses for the loader (``{name: planetoid, dataset: PubMed}``).

    Shapes:
        Cora: x ``(2708, 1433)``, edge_index ``(2, 10556)``, y and masks ``(2708,)``;
        140 training and 1,000 test nodes.

    Raises:
        FileNotFoundError: naming the folder and the missing raw files.

    Example:
        >>> graph = planetoid("~/data/planetoid", "Cora")  # doctest: +SKIP
    """
    root = Path(root).expanduser()
    raw_names = [f"ind.{dataset.lower()}.{part}" for part in PLANETOID_RAW]
    find_files([root / dataset / "raw"], raw_names, f"Planetoid {dataset}")
    from torch_geometric.datasets import Planetoid  # imported late: only this loader needs it

    graphs = Planetoid(str(root), dataset)
    data = graphs[0]
    train, test = (np.flatnonzero(mask.numpy()) for mask in (data.train_mask, data.test_mask))
    return _graph_data(data.x, data.edge_index, data.y.numpy(), train, test, graphs.num_classes)


def _graph_data(x: torch.Tensor, edge_index: torch.Tensor, labels: np.ndarray, train: np.ndarray,
                test: np.ndarray, num_classes: int) -> GraphData:
    from torch_geometric.utils import to_undirected

    # Guarantees the "both directions" contract whatever the source, and sorts by (source, target)
    # so a seed always gives the same tensor.
    edge_index = to_undirected(edge_index.long(), num_nodes=len(labels))
    train_mask = torch.zeros(len(labels), dtype=torch.bool)
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    train_mask[torch.from_numpy(train)] = True
    test_mask[torch.from_numpy(test)] = True
    return GraphData(x.float().contiguous(), edge_index, int64_tensor(labels), train_mask,
                     test_mask, num_classes=num_classes)
