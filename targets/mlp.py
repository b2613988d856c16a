"""Multi-layer perceptrons."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from hyperkit.registry import register_target

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected classifier: ``in_features → hidden[0] → … → num_classes``.

    Args:
        in_features: input size (inputs are flattened from dim 1).
        hidden: hidden layer widths.
        num_classes: output size.
        activation: "relu" | "gelu" | "tanh" | "silu".

    Shapes:
        input ``(batch, *)`` with ``in_features`` values per row; output ``(batch, num_classes)``.

    Example:
        >>> MLP(4, [8], 3)(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int, activation: str = "relu"):
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), make_activation(activation)]
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.net = nn.Sequential(*layers)
        self.in_features = in_features

    def example_inputs(self, batch: int = 4) -> tuple[torch.Tensor]:
        return (torch.randn(batch, self.in_features),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


@register_target
def mlp_tiny(in_features: int = 4, hidden: Sequence[int] = (16,), num_classes: int = 3, **kw) -> MLP:
    """A one-hidden-layer MLP for tests and examples (4 → 16 → 3)."""
    return MLP(in_features, hidden, num_classes, **kw)


@register_target
def mlp_digits(in_features: int = 64, hidden: Sequence[int] = (64, 64), num_classes: int = 10, **kw) -> MLP:
    """MLP for scikit-learn's 8×8 digits (64 → 64 → 64 → 10)."""
    return MLP(in_features, hidden, num_classes, **kw)


@register_target
def mlp_mnist(in_features: int = 784, hidden: Sequence[int] = (512, 512), num_classes: int = 10, **kw) -> MLP:
    """Two-hidden-layer 512-wide MLP for 28×28 images (784 → 512 → 512 → 10; 669K weights)."""
    return MLP(in_features, hidden, num_classes, **kw)
