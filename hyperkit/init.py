"""Statistics-matching initialisation (UHN's L_init): make every generated tensor start with the
mean and std of its default PyTorch / PyG initialisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from hyperkit.descriptors import TargetSpec, sequence_of
from hyperkit.generator import Generator

DEFAULT_TOLERANCE = 0.1


@dataclass
class TensorStats:
    spec_index: int
    name: str
    mean: float
    std: float
    target_mean: float
    target_std: float
    scale: float

    def error(self) -> float:
        """Largest of |Δmean| and |Δstd|, in units of the tensor's init scale."""
        return max(abs(self.mean - self.target_mean), abs(self.std - self.target_std)) / self.scale


@dataclass
class InitReport:
    """Result of :func:`init_statistics`: per-tensor statistics, steps taken, convergence."""

    stats: list[TensorStats]
    steps: int
    tolerance: float
    losses: list[float]

    @property
    def converged(self) -> bool:
        return all(s.error() <= self.tolerance for s in self.stats)

    @property
    def max_error(self) -> float:
        return max(s.error() for s in self.stats)

    def __str__(self) -> str:
        lines = [f"{'tensor':40s} {'mean':>9s} {'target':>9s} {'std':>9s} {'target':>9s} {'err':>6s}"]
        for s in self.stats:
            lines.append(f"{s.name[:40]:40s} {s.mean:9.4f} {s.target_mean:9.4f} {s.std:9.4f} "
                         f"{s.target_std:9.4f} {s.error():6.3f}")
        lines.append(f"{self.steps} steps, max error {self.max_error:.3f} (tolerance {self.tolerance}), "
                     f"{'converged' if self.converged else 'NOT converged'}")
        return "\n".join(lines)


def _stats_loss(values: dict[str, torch.Tensor], spec: TargetSpec) -> torch.Tensor:
    terms = []
    for name, v in values.items():
        p = spec.params[name]
        flat = v.reshape(-1)
        term = ((flat.mean() - p.init_mean) / p.scale) ** 2
        if flat.numel() > 1:
            term = term + ((flat.std(unbiased=False) - p.init_std) / p.scale) ** 2
        terms.append(term)
    return torch.stack(terms).mean()


def _tensor_stats(index: int, spec: TargetSpec, values: dict[str, torch.Tensor]) -> list[TensorStats]:
    out = []
    for name, v in values.items():
        p = spec.params[name]
        flat = v.detach().reshape(-1).double()
        std = flat.std(unbiased=False).item() if flat.numel() > 1 else p.init_std
        out.append(TensorStats(index, name, flat.mean().item(), std, p.init_mean, p.init_std, p.scale))
    return out


def measure(generator: Generator, specs: TargetSpec | Sequence[TargetSpec],
            condition: torch.Tensor | None = None) -> list[TensorStats]:
    """Mean and std of every fully generated tensor next to its default-init targets."""
    with torch.no_grad():
        return [s for i, spec in enumerate(sequence_of(specs))
                for s in _tensor_stats(i, spec, generator(spec, condition))]


def init_statistics(generator: Generator, specs: TargetSpec | Sequence[TargetSpec] | None = None, *,
                    steps: int = 500, lr: float = 1e-3, tolerance: float = DEFAULT_TOLERANCE,
                    sample: int = 4096, condition: torch.Tensor | None = None, check_every: int = 25,
                    seed: int = 0) -> InitReport:
    """Train ``generator`` so each generated tensor matches its default-init mean and std.

    Minimises ``L_init = mean_t [((μ̂_t − μ_t)/s_t)² + ((σ̂_t − σ_t)/s_t)²]`` (UHN's L_init,
    normalised by each tensor's init scale ``s_t``) with Adam, estimating μ̂, σ̂ on up to
    ``sample`` positions per tensor, and stops early once every tensor is within ``tolerance``
    (in units of ``s_t``). The returned report measures the fully generated tensors.

    Args:
        generator: the generator to initialise (modified in place).
        specs: targets to match (default: the generator's first spec).
        steps: maximum optimisation steps.
        lr: Adam learning rate.
        tolerance: allowed |Δmean| and |Δstd| in units of each tensor's init scale.
        sample: positions per tensor used to estimate the statistics in each step.
        condition: conditions to generate under (a batch gives statistics over all of them).

    Example:
        >>> import torch.nn as nn, hyperkit
        >>> spec = hyperkit.describe(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4)))
        >>> gen = hyperkit.Generator(spec, head="lowrank", width=32, fourier_features=64)
        >>> hyperkit.init_statistics(gen, spec).converged
        True
    """
    specs = sequence_of(specs if specs is not None else generator.default_spec)
    optimizer = torch.optim.Adam(generator.parameters(), lr=lr)
    rng = torch.Generator().manual_seed(seed)
    losses, step = [], 0
    for step in range(1, steps + 1):
        loss = torch.stack([_stats_loss(generator.sample(s, sample, condition, rng), s) for s in specs]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % check_every == 0 and _within(generator, specs, sample, condition, rng, tolerance / 2):
            break
    return InitReport(measure(generator, specs, condition), step, tolerance, losses)


def _within(generator, specs, sample, condition, rng, tolerance) -> bool:
    """Whether sampled statistics of every tensor are within ``tolerance`` (a cheap early stop)."""
    with torch.no_grad():
        return all(s.error() <= tolerance for i, spec in enumerate(specs)
                   for s in _tensor_stats(i, spec, generator.sample(spec, sample, condition, rng)))
