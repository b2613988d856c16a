"""The generator as a target: what makes recursive hypernetworks (H0 → H1 → … → f) work.

A :class:`Hypernet` wraps a :class:`~hyperkit.Generator` built for some network; its forward pass
returns every weight of that network as one flat vector. Describing it describes the generator's
own layers (trunk, projections, heads, side codes), so another generator can emit its weights.
Its buffers — the fixed Fourier matrices and normalisation ranges — are never generated.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from hyperkit.descriptors import TargetSpec, describe
from hyperkit.generator import Generator
from hyperkit.registry import create_target, register_target


class Hypernet(nn.Module):
    """A generator seen as a network: ``forward()`` → the flat weights of the network it generates.

    Args:
        generator: a generator built on ``spec``.
        spec: the described network it generates (default: its first spec).

    Shapes:
        output ``(spec.num_weights,)`` (``(batch, num_weights)`` with a batch of conditions).

    Example:
        >>> net = hypernet("mlp_tiny")
        >>> net().shape, net.spec.num_weights
        (torch.Size([131]), 131)
    """

    def __init__(self, generator: Generator, spec: TargetSpec | None = None):
        super().__init__()
        self.generator = generator
        self.spec = spec if spec is not None else generator.default_spec

    def example_inputs(self, batch: int = 0) -> tuple:
        return ()

    def forward(self, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator.flat(self.spec, condition)


@register_target
def hypernet(target: str = "mlp_tiny", head: str = "lowrank", width: int = 32, fourier_features: int = 64,
             num_blocks: int = 1, rank: int = 8, seed: int = 0, **target_kwargs) -> Hypernet:
    """A small low-rank generator for the registered ``target`` (default ``mlp_tiny``)."""
    spec = describe(create_target(target, **target_kwargs))
    return Hypernet(Generator(spec, head=head, width=width, fourier_features=fourier_features,
                              num_blocks=num_blocks, rank=rank, seed=seed), spec)
