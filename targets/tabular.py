"""The MotherNet child as a registered target (the class is :mod:`hyperkit.tabular.child`)."""

from __future__ import annotations

from hyperkit.registry import register_target
from hyperkit.tabular.child import LowRankLinear, MotherNetChild

__all__ = ["LowRankLinear", "MotherNetChild", "mothernet_child"]


@register_target
def mothernet_child(in_features: int = 100, hidden: int = 128, num_classes: int = 10, rank: int = 16) -> MotherNetChild:
    """MotherNet's child MLP (100 → 128 → 128 → 10, rank-16 hidden weights)."""
    return MotherNetChild(in_features, hidden, num_classes, rank)
