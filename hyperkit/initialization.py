"""Statistics-matching initialisation (UHN's L_init): make every generated tensor start with the
mean and std of its default PyTorch / PyG initialisation — and, beyond UHN, with rows as
uncorrelated as those of a freshly initialised tensor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from hyperkit.engine.schedule import fusable
from hyperkit.generator import Generator
from hyperkit.spec import TargetSpec, sequence_of

DEFAULT_TOLERANCE = 0.1
DEFAULT_CORRELATION_TOLERANCE = 1.0


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
    correlation: dict[str, float] = field(default_factory=dict)
    correlation_tolerance: float = DEFAULT_CORRELATION_TOLERANCE

    @property
    def converged(self) -> bool:
        """Every tensor's mean and std within ``tolerance`` (UHN's criterion)."""
        return all(s.error() <= self.tolerance for s in self.stats)

    @property
    def decorrelated(self) -> bool:
        """Every row correlation within ``1 + correlation_tolerance`` (1: independent rows). A
        low-rank head with rank below a matrix's size cannot get there; the term then only
        lowers the correlation as far as the rank allows."""
        return all(c <= 1 + self.correlation_tolerance for c in self.correlation.values())

    @property
    def max_error(self) -> float:
        return max(s.error() for s in self.stats)

    def __str__(self) -> str:
        lines = [f"{'tensor':40s} {'mean':>9s} {'target':>9s} {'std':>9s} {'target':>9s} {'err':>6s}"]
        for s in self.stats:
            lines.append(f"{s.name[:40]:40s} {s.mean:9.4f} {s.target_mean:9.4f} {s.std:9.4f} "
                         f"{s.target_std:9.4f} {s.error():6.3f}")
        if self.correlation:
            worst = max(self.correlation, key=self.correlation.get)
            lines.append(f"row correlation (1 = independent rows): worst {self.correlation[worst]:.2f} ({worst})")
        lines.append(f"{self.steps} steps, max error {self.max_error:.3f} (tolerance {self.tolerance}), "
                     f"{'converged' if self.converged else 'NOT converged'}"
                     + ("" if self.decorrelated else f"; rows more correlated than 1 + {self.correlation_tolerance}"))
        return "\n".join(lines)


def statistics_loss(values: dict[str, torch.Tensor], spec: TargetSpec) -> torch.Tensor:
    """UHN's L_init over ``values`` (every tensor, or sampled positions of it): the mean over tensors
    of ``((μ̂ − μ)/s)² + ((σ̂ − σ)/s)²`` against each tensor's default-init mean, std and scale."""
    terms = []
    for name, v in values.items():
        p = spec.params[name]
        flat = v.reshape(-1)
        term = ((flat.mean() - p.init_mean) / p.scale) ** 2
        if flat.numel() > 1:
            term = term + ((flat.std(unbiased=False) - p.init_std) / p.scale) ** 2
        terms.append(term)
    return torch.stack(terms).mean()


def row_correlation(grids: dict[str, torch.Tensor], min_rows: int = 8) -> dict[str, torch.Tensor]:
    """How much the rows of each ``(..., rows, k)`` grid share directions: about 1 for independent
    random rows, up to ``k`` for rows along one direction.

    The grid is centred over rows and over columns (the low-rank head centres its factors, which
    makes rows sum to zero, and so do column-centred random rows), and ``ρ = (k − 1) · (mean_{i≠j}
    cos²(row_i, row_j) − 1/(rows − 1)²)`` discounts the correlation that centring alone creates.
    Grids with fewer than ``min_rows`` rows (e.g. a 3-class output layer), where that discount is
    inexact, are left out. Generated matrices that only match mean and std start at ρ ≈ 5–10 (on
    the digits MLP a few shared directions hold most of the energy: effective rank 9 of 64).
    """
    out = {}
    for name, w in grids.items():
        rows, k = w.shape[-2], w.shape[-1]
        if rows < min_rows or k < 2:
            continue
        m = w - w.mean(-1, keepdim=True) - w.mean(-2, keepdim=True) + w.mean((-1, -2), keepdim=True)
        m = m / m.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        gram = (m @ m.transpose(-1, -2)).pow(2)
        off_diagonal = (gram.sum((-1, -2)) - gram.diagonal(dim1=-2, dim2=-1).sum(-1)) / (rows * (rows - 1))
        out[name] = ((off_diagonal - 1 / (rows - 1) ** 2) * (k - 1)).mean()
    return out


def tensor_statistics(spec: TargetSpec, values: dict[str, torch.Tensor], spec_index: int = 0) -> list[TensorStats]:
    """Mean and std of each tensor in ``values`` next to its default-init targets from ``spec``
    (``spec_index`` labels the spec among several)."""
    out = []
    for name, v in values.items():
        p = spec.params[name]
        flat = v.detach().reshape(-1).double()
        std = flat.std(unbiased=False).item() if flat.numel() > 1 else p.init_std
        out.append(TensorStats(spec_index, name, flat.mean().item(), std, p.init_mean, p.init_std, p.scale))
    return out


def measure(generator: Generator, specs: TargetSpec | Sequence[TargetSpec],
            condition: torch.Tensor | None = None) -> list[TensorStats]:
    """Mean and std of every fully generated tensor next to its default-init targets."""
    with torch.no_grad():
        return [s for i, spec in enumerate(sequence_of(specs))
                for s in tensor_statistics(spec, generator(spec, condition), i)]


def init_statistics(generator: Generator, specs: TargetSpec | Sequence[TargetSpec] | None = None, *,
                    steps: int = 500, lr: float = 1e-3, tolerance: float = DEFAULT_TOLERANCE,
                    sample: int = 4096, decorrelate: float = 0.1,
                    correlation_tolerance: float = DEFAULT_CORRELATION_TOLERANCE,
                    condition: torch.Tensor | None = None, check_every: int = 25, seed: int = 0) -> InitReport:
    """Train ``generator`` so each generated tensor matches its default-init mean and std, with
    rows about as uncorrelated as a fresh initialisation's.

    Minimises ``L_init = mean_t [((μ̂_t − μ_t)/s_t)² + ((σ̂_t − σ_t)/s_t)²] + λ · mean_t relu(ρ_t − 1)``
    with Adam. The first term is UHN's L_init, normalised by each tensor's init scale ``s_t``, with
    μ̂, σ̂ estimated on up to ``sample`` positions per tensor. The second (``λ`` = ``decorrelate``)
    is hyperkit's: ``ρ_t`` is the :func:`row_correlation` of a random grid of rows and columns of
    every matrix, 1 for independent rows — matching mean and std alone leaves generated matrices
    dominated by a few shared directions. Stops early once every tensor is within ``tolerance``
    (in units of ``s_t``) and every ``ρ_t`` is within ``1 + correlation_tolerance`` or has stopped
    falling (a low-rank head cannot decorrelate more rows than its rank).

    Args:
        generator: the generator to initialise (modified in place).
        specs: targets to match (default: the generator's first spec).
        steps: maximum optimisation steps.
        lr: Adam learning rate.
        tolerance: allowed |Δmean| and |Δstd| in units of each tensor's init scale.
        sample: positions per tensor used to estimate the statistics in each step.
        decorrelate: weight ``λ`` of the row-correlation term (0 gives UHN's L_init alone).
        correlation_tolerance: allowed ``ρ_t − 1``.
        condition: conditions to generate under (a batch gives statistics over all of them).

    Example:
        >>> import torch.nn as nn, hyperkit
        >>> spec = hyperkit.describe(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4)))
        >>> gen = hyperkit.Generator(spec, head="lowrank", width=32, fourier_features=64)
        >>> hyperkit.init_statistics(gen, spec).converged
        True
    """
    specs = sequence_of(specs if specs is not None else generator.default_spec)
    optimizer = adam(generator.parameters(), lr)
    rng = torch.Generator().manual_seed(seed)
    grid = max(2, int(sample ** 0.5))
    losses, step, previous_worst = [], 0, float("inf")
    for step in range(1, steps + 1):
        terms = []
        for s in specs:
            values, grids = _draw(generator, s, sample, grid if decorrelate else 0, condition, rng)
            loss = statistics_loss(values, s)
            correlation = row_correlation(grids)
            if correlation:
                loss = loss + decorrelate * torch.stack([torch.relu(c - 1) for c in correlation.values()]).mean()
            terms.append(loss)
        loss = torch.stack(terms).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % check_every == 0 and _within(generator, specs, sample, condition, rng, tolerance / 2):
            worst = max(_correlations(generator, specs, grid, condition, rng).values(), default=1) if decorrelate else 1
            if worst <= 1 + correlation_tolerance or worst > 0.95 * previous_worst:  # reached, or stalled
                break
            previous_worst = worst
    correlation = _correlations(generator, specs, grid, condition, rng) if decorrelate else {}
    return InitReport(measure(generator, specs, condition), step, tolerance, losses, correlation,
                      correlation_tolerance)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam over ``params``, fused into one kernel where torch has one (CPU and CUDA floating-point
    tensors): the per-tensor loop of the default implementation took a third of an init step on
    the digits MLP's generator."""
    params = [p for p in params if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, fused=fusable(params))


def _draw(generator: Generator, spec: TargetSpec, sample: int, grid: int, condition, rng):
    """Sampled values for the statistics and (``grid > 0``) row grids for the correlation term.

    A head that evaluates positions alone (the scalar head) gives only the sampled positions; the
    other heads generate every weight anyway, so one generation serves both and the statistics use
    every weight."""
    if generator.head.generates_positions:
        values = generator.random_values(spec, sample, condition, rng)
        return values, generator.random_grid(spec, grid, grid, condition, rng) if grid else {}
    values = generator(spec, condition)
    return values, grids_of(values, spec, grid, rng) if grid else {}


def grids_of(values: dict[str, torch.Tensor], spec: TargetSpec, grid: int, rng: torch.Generator) -> dict:
    """A random grid of up to ``grid`` rows and columns of every fully generated matrix in
    ``values`` (dimensions after the first flattened), for :func:`row_correlation`."""
    grids = {}
    for name, p in spec.params.items():
        if len(p.shape) >= 2 and p.shape[0] >= 2:
            w = values[name].flatten(-len(p.shape) + 1)
            r = torch.randperm(w.shape[-2], generator=rng)[:grid].to(w.device)
            c = torch.randperm(w.shape[-1], generator=rng)[:grid].to(w.device)
            grids[name] = w.index_select(-2, r).index_select(-1, c)
    return grids


def _correlations(generator, specs, grid, condition, rng) -> dict[str, float]:
    with torch.no_grad():
        return {f"{i}:{name}" if len(specs) > 1 else name: value.item() for i, s in enumerate(specs)
                for name, value in row_correlation(generator.random_grid(s, grid, grid, condition, rng)).items()}


def _within(generator, specs, sample, condition, rng, tolerance) -> bool:
    """Whether sampled statistics of every tensor are within ``tolerance`` (a cheap early stop)."""
    with torch.no_grad():
        return all(s.error() <= tolerance for i, spec in enumerate(specs)
                   for s in tensor_statistics(spec, generator.random_values(spec, sample, condition, rng), i))
