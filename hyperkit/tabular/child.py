"""The MotherNet child: a small MLP whose hidden weights are low-rank with shared factors.

MotherNet (Müller, Curino & Ramakrishnan, 2023) generates the child's hidden weights as
``W = U · V`` where ``U`` comes from the hypernetwork and ``V`` is learned once and shared by every
dataset; the generator then emits only ``(out, rank)`` per hidden layer instead of ``(out, in)``.
The registered target ``mothernet_child`` (:mod:`hyperkit.targets.tabular`) builds it by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from hyperkit.descriptors import LayerDescription, ParamInfo, register_layer

__all__ = ["LowRankLinear", "MotherNetChild"]


class LowRankLinear(nn.Module):
    """``y = x Wᵀ + b`` with ``W = U · V``: ``U`` a parameter (generated), ``V`` a buffer (shared).

    Args:
        in_features: input size.
        out_features: output size.
        rank: inner size of the factorisation.

    Shapes:
        u ``(out_features, rank)``, v ``(rank, in_features)``; input ``(*, in_features)`` →
        ``(*, out_features)``.

    Example:
        >>> layer = LowRankLinear(6, 4, rank=2)
        >>> layer(torch.randn(3, 6)).shape, layer.to_linear().weight.shape
        (torch.Size([3, 4]), torch.Size([4, 6]))
    """

    def __init__(self, in_features: int, out_features: int, rank: int):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        # Var(W_ij) = rank · Var(U) · Var(V) = Var(U) with V ~ N(0, 1/rank): W starts like nn.Linear's.
        bound = 1 / math.sqrt(in_features)
        self.u = nn.Parameter(torch.empty(out_features, rank).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.register_buffer("v", torch.randn(rank, in_features) / math.sqrt(rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.v.T) @ self.u.T + self.bias

    def to_linear(self) -> nn.Linear:
        """The equivalent dense ``nn.Linear`` (weight ``U · V``)."""
        linear = nn.Linear(self.in_features, self.out_features)
        with torch.no_grad():
            linear.weight.copy_(self.u @ self.v)
            linear.bias.copy_(self.bias)
        return linear


@register_layer(LowRankLinear, "lowrank_linear")
def describe_lowrank_linear(m: LowRankLinear) -> LayerDescription:
    std = 1.0 / math.sqrt(3.0 * m.in_features)
    return LayerDescription(
        {"in_size": m.in_features, "out_size": m.out_features},
        {"u": ParamInfo("lowrank_u", ("row", "col"), std=std), "bias": ParamInfo("bias", ("row",), std=std)},
    )


class MotherNetChild(nn.Module):
    """``in → hidden → hidden → classes`` with ReLU; the two hidden weights are low-rank.

    Args:
        in_features: input size (MotherNet pads every table to this many features).
        hidden: hidden width.
        num_classes: output size.
        rank: rank of the hidden weights.

    Shapes:
        input ``(batch, in_features)`` → logits ``(batch, num_classes)``.

    Example:
        >>> child = MotherNetChild(10, 16, 3, rank=4)
        >>> child(torch.randn(5, 10)).shape
        torch.Size([5, 3])
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, rank: int):
        super().__init__()
        self.in_features = in_features
        self.layers = nn.Sequential(
            LowRankLinear(in_features, hidden, rank), nn.ReLU(),
            LowRankLinear(hidden, hidden, rank), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def example_inputs(self, batch: int = 4) -> tuple[torch.Tensor]:
        return (torch.randn(batch, self.in_features),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def to_dense(self) -> nn.Sequential:
        """A plain ``Linear-ReLU-Linear-ReLU-Linear`` with the same function."""
        first, _, second, _, last = self.layers
        dense_last = nn.Linear(last.in_features, last.out_features)
        dense_last.load_state_dict(last.state_dict())
        return nn.Sequential(first.to_linear(), nn.ReLU(), second.to_linear(), nn.ReLU(), dense_last)
