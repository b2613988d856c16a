"""Recursive hypernetworks: a root generator H0 emits the weights of a generator H1, which emits
those of H2, …, down to HK, which emits the weights of the task network f (Chauhan et al.,
"Universal Hypernetworks for Arbitrary Models": stable to K = 3 on MNIST with the
statistics-matching initialisation, divergent without it).

Only H0 is trained; gradients reach it through every level. Each level is an ordinary
:class:`Hypernet` (the registered target ``hypernet``) run with :func:`torch.func.functional_call`, so its
generation is chunked exactly as a trained generator's. The fixed Fourier matrices of every level
are the root's tensors (shared, never generated).

Example:
    >>> import torch, hyperkit
    >>> target = hyperkit.create_target("mlp_tiny")
    >>> chain = GeneratorChain(target, depth=2, width=16, fourier_features=32, rank=4, num_blocks=1)
    >>> reports = init_chain(chain, steps_per_level=30, lr=3e-3)
    >>> [r.level for r in reports], hyperkit.call(target, chain(), torch.randn(5, 4)).shape
    ([1, 2, 3], torch.Size([5, 3]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.func import functional_call

from hyperkit.descriptors import TargetSpec, describe
from hyperkit.generator import Generator
from hyperkit.initialization import (DEFAULT_TOLERANCE, InitReport, adam, grids_of, row_correlation,
                                     statistics_loss, tensor_statistics)

__all__ = ["GeneratorChain", "Hypernet", "LevelReport", "init_chain"]


class Hypernet(nn.Module):
    """A generator seen as a network: ``forward()`` → the flat weights of the network it generates.

    Args:
        generator: a generator built on ``spec``.
        spec: the described network it generates (default: its first spec).

    Shapes:
        output ``(spec.num_weights,)`` (``(batch, num_weights)`` with a batch of conditions).

    Example:
        >>> import hyperkit
        >>> net = hyperkit.create_target("hypernet", target="mlp_tiny")  # the registered builder
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


class GeneratorChain(nn.Module):
    """``H0 → H1 → … → HK → f``: calling the chain generates every weight of ``target``.

    Args:
        target: the task network ``f`` (its parameters are templates, never trained).
        depth: ``K``, the number of intermediate generators (0: H0 emits ``f`` directly).
        task: task descriptor fields for ``describe(target, task)``.
        **generator_kwargs: arguments of every level's :class:`~hyperkit.Generator` (head, width,
            rank …); each level is built for the level below it.

    Shapes:
        ``chain()`` → ``{name: tensor}`` shaped like ``target.named_parameters()``.
    """

    def __init__(self, target: nn.Module, depth: int, task: dict | None = None, **generator_kwargs):
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        specs = [describe(target, task)]  # bottom-up: f, HK, …, H1
        levels = []
        for _ in range(depth):
            level = Hypernet(Generator(specs[-1], **generator_kwargs), specs[-1]).requires_grad_(False)
            levels.append(level)
            specs.append(describe(level))
        self.root = Generator(specs[-1], **generator_kwargs)
        self.levels = nn.ModuleList(reversed(levels))  # H1 first
        self.specs = list(reversed(specs))  # specs[k]: what level k's generator emits (k = 0: H1 or f)
        self.depth = depth
        for level in self.levels:
            _share_fourier(self.root, level.generator)

    def generate(self, upto: int | None = None) -> list[dict[str, torch.Tensor]]:
        """The generated parameters of levels ``1 … upto`` (level ``K + 1`` is ``f``), top down."""
        upto = self.depth + 1 if upto is None else upto
        flat = self.root.flat(self.specs[0])
        out = [self.specs[0].unflatten(flat)]
        for k in range(1, upto):
            flat = functional_call(self.levels[k - 1], out[-1], ())
            out.append(self.specs[k].unflatten(flat))
        return out

    def forward(self) -> dict[str, torch.Tensor]:
        return self.generate()[-1]

    def level_stats(self, levels: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """The init's statistics loss of each intermediate level H1 … HK in ``levels`` (from
        :meth:`generate`): each generated tensor's squared |Δmean| and |Δstd| against its default
        init, in units of its init scale, averaged over the level's tensors. Added to a training
        loss, it keeps the generated generators near their init statistics.

        Shapes:
            ``(K,)``; ``(0,)`` when ``depth == 0`` (the task network's weights are not included).

        Example:
            >>> import hyperkit
            >>> chain = GeneratorChain(hyperkit.create_target("mlp_tiny"), depth=2, width=16,
            ...                        fourier_features=32, rank=4, num_blocks=1)
            >>> chain.level_stats(chain.generate()).shape
            torch.Size([2])
        """
        terms = [statistics_loss(values, spec) for values, spec in zip(levels[:self.depth], self.specs)]
        return torch.stack(terms) if terms else next(iter(levels[-1].values())).new_zeros(0)


def _share_fourier(root: Generator, child: Generator) -> None:
    """Make ``child`` use ``root``'s fixed Fourier matrices (same seed and sizes: same values)."""
    for name, module in child.named_modules():
        if hasattr(module, "B") and isinstance(module.B, torch.Tensor):
            source = root.get_submodule(name).B
            if source.shape == module.B.shape:
                module.B = source


@dataclass
class LevelReport(InitReport):
    """:class:`~hyperkit.initialization.InitReport` of one level (1 = H1, …, K + 1 = the task network)."""

    level: int = 0


def init_chain(chain: GeneratorChain, steps_per_level: int = 200, lr: float = 1e-3,
               tolerance: float = DEFAULT_TOLERANCE, decorrelate: float = 0.1, grid: int = 64,
               seed: int = 0, on_step: Callable[[int, int, float], None] | None = None) -> list[LevelReport]:
    """Top-down statistics-matching initialisation of a chain.

    The active level at init step ``s`` is ``k = min(K, s // steps_per_level)``: first H0 learns to
    emit H1 with the mean and spread of H1's default initialisation (and rows as uncorrelated as
    a fresh init's, see :func:`~hyperkit.initialization.init_statistics`), then — H1 fixed by H0's weights —
    the tensors H1 emits for H2, and so on down to the task network. Only H0 is trained.

    Args:
        chain: the chain to initialise (its root is modified in place).
        steps_per_level: Adam steps per level; 0 skips the phase.
        lr: Adam learning rate.
        tolerance: allowed |Δmean| and |Δstd| in units of each tensor's init scale (for the report).
        decorrelate: weight of the row-correlation term.
        grid: rows and columns sampled per matrix for the correlation term.
        on_step: called as ``on_step(level, step, loss)`` (e.g. to log).

    Returns:
        One report per level, top down.
    """
    optimizer = adam(chain.root.parameters(), lr)
    rng = torch.Generator().manual_seed(seed)
    reports = []
    for level in range(1, chain.depth + 2):
        spec, losses = chain.specs[level - 1], []
        for step in range(steps_per_level):
            values = chain.generate(upto=level)[-1]
            loss = statistics_loss(values, spec)
            correlation = row_correlation(grids_of(values, spec, grid, rng)) if decorrelate else {}
            if correlation:
                loss = loss + decorrelate * torch.stack([torch.relu(c - 1) for c in correlation.values()]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(level, step, losses[-1])
        reports.append(_level_report(chain, level, spec, losses, tolerance, grid, rng))
    return reports


def _level_report(chain, level, spec, losses, tolerance, grid, rng) -> LevelReport:
    with torch.no_grad():
        values = chain.generate(upto=level)[-1]
        correlation = {k: v.item() for k, v in row_correlation(grids_of(values, spec, grid, rng)).items()}
        return LevelReport(tensor_statistics(spec, values, level), len(losses), tolerance, losses, correlation,
                           level=level)
