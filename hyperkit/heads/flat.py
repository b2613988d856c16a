"""The flat head: a linear map from a condition vector to every weight (the classic hypernetwork,
MotherNet's decoder)."""

from __future__ import annotations

import torch
import torch.nn as nn

from hyperkit.blocks import LearnedVectors
from hyperkit.heads.base import Head
from hyperkit.spec import TargetSpec


class FlatHead(Head):
    """``W = out(trunk(z))`` with ``z`` the projected condition, or a learned latent without one.

    Its size grows with the target (one output per weight), and it emits one fixed architecture:
    the spec it was built on.

    Args:
        spec: the one target it emits.
        condition_size: 0: the trunk input is a learned latent ``(1, width)``.

    Shapes:
        condition ``(batch?, width)`` → ``(batch?, num_weights)``.
    """

    name = "flat"
    uses_descriptors = False

    def __init__(self, spec: TargetSpec, condition_size: int):
        self.key = spec.key()
        self.condition_size = condition_size

    def layers(self, width: int, spec: TargetSpec) -> dict[str, nn.Module]:
        latent = None if self.condition_size else LearnedVectors(1, width, std=1.0)
        return {"latent": latent, "out": nn.Linear(width, spec.num_weights)}

    def emit(self, generator, spec: TargetSpec, cond: torch.Tensor | None) -> torch.Tensor:
        if spec.key() != self.key:
            raise ValueError("this flat-head generator was built for another target; the flat head "
                             "emits one fixed architecture (use head='scalar' or 'lowrank' for several)")
        z = cond if cond is not None else generator.latent.weight[0]
        return generator.out(generator.trunk(z))
