"""The generator as a target: what makes recursive hypernetworks (H0 → H1 → … → f) work.

A :class:`~hyperkit.recursive.Hypernet` (the class lives in the library, beside the chains it
builds) wraps a :class:`~hyperkit.Generator` built for some network; its forward pass
returns every weight of that network as one flat vector. Describing it describes the generator's
own layers (trunk, projections, heads, side codes), so another generator can emit its weights.
Its buffers — the fixed Fourier matrices and normalisation ranges — are never generated.
"""

from __future__ import annotations

from hyperkit.descriptors import describe
from hyperkit.generator import Generator
from hyperkit.recursive import Hypernet
from hyperkit.registry import create_target, register_target

__all__ = ["Hypernet", "hypernet"]


@register_target
def hypernet(target: str = "mlp_tiny", head: str = "lowrank", width: int = 32, fourier_features: int = 64,
             num_blocks: int = 1, rank: int = 8, seed: int = 0, **target_kwargs) -> Hypernet:
    """A small low-rank generator for the registered ``target`` (default ``mlp_tiny``)."""
    spec = describe(create_target(target, **target_kwargs))
    return Hypernet(Generator(spec, head=head, width=width, fourier_features=fourier_features,
                              num_blocks=num_blocks, rank=rank, seed=seed), spec)
