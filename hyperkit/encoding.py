"""Descriptor encoding: attribute-wise normalisation and Gaussian Fourier features.

Each attribute x is normalised with a range fixed when the generator is built,
``x̂ = m · (2 (x - lo) / (hi - lo) - 1)``, where the frequency multiplier ``m`` grows with the
number of distinct integer levels in the range so that neighbouring indices (row 7 vs row 8) get
nearly uncorrelated features. Features are ``[sin(2π x̂ B), cos(2π x̂ B)]`` with a fixed
``B ~ N(0, σ²)`` (Tancik et al., 2020). The context attributes share one dense ``B``; each axis
attribute (row, column, kernel position, head, block) has its own, which is what lets the first
trunk layer be evaluated once per row and once per column instead of once per weight.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn as nn

from hyperkit.spec import (AXIS_FIELDS, CONTEXT_FIELDS, FIXED_RANGES, GLOBAL_FIELDS, LOG_FIELDS, TASK_FIELDS,
                           TargetSpec)

ALL_FIELDS = CONTEXT_FIELDS + AXIS_FIELDS
# A generator with shared_trunk=True: the fields that differ between targets (the layer's relative
# depth, the model's size, the task) leave the trunk input and modulate its output; the rest stay.
MEMBER_FIELDS = ("depth",) + GLOBAL_FIELDS + TASK_FIELDS
LOCAL_FIELDS = tuple(f for f in CONTEXT_FIELDS if f not in MEMBER_FIELDS)
_CONTINUOUS = LOG_FIELDS | {"depth"}
MAX_MULTIPLIER = 256.0


@functools.cache
def field_columns(fields: tuple[str, ...]) -> list[int]:
    """Columns of ``fields`` in a ``(…, len(CONTEXT_FIELDS))`` context tensor."""
    return [CONTEXT_FIELDS.index(f) for f in fields]


def transform(field: str, values: torch.Tensor) -> torch.Tensor:
    return torch.log1p(values) if field in LOG_FIELDS else values


def field_ranges(specs: Sequence[TargetSpec]) -> dict[str, tuple[float, float]]:
    """Per-attribute (min, max) over every descriptor of ``specs``, in transformed units."""
    lo = {f: math.inf for f in ALL_FIELDS}
    hi = {f: -math.inf for f in ALL_FIELDS}

    def update(f, value_min, value_max):
        lo[f], hi[f] = min(lo[f], value_min), max(hi[f], value_max)

    for spec in specs:
        for name, p in spec.params.items():
            for f, v in zip(CONTEXT_FIELDS, spec.context(name)):
                update(f, v, v)
            for size, axis in zip(p.shape, p.axes):
                for a in axis:
                    values = a.values(size)
                    update(a.field, float(values.min()), float(values.max()))
    ranges = {}
    for f in ALL_FIELDS:
        if f in FIXED_RANGES:
            ranges[f] = FIXED_RANGES[f]
            continue
        a, b = (lo[f], hi[f]) if lo[f] <= hi[f] else (0.0, 0.0)
        a, b = transform(f, torch.tensor([a, b], dtype=torch.float64)).tolist()
        ranges[f] = (a, b)
    return ranges


class Normalizer(nn.Module):
    """Attribute-wise normalisation with ranges fixed at construction (saved in ``state_dict``).

    Values outside the range are still encoded, with a one-time warning per attribute: the
    generator was not built for them.

    Shapes:
        input ``(..., k)`` raw values of ``k`` fields; output ``(..., k)``.
    """

    def __init__(self, ranges: dict[str, tuple[float, float]]):
        super().__init__()
        lo = torch.tensor([ranges[f][0] for f in ALL_FIELDS], dtype=torch.float32)
        hi = torch.tensor([ranges[f][1] for f in ALL_FIELDS], dtype=torch.float32)
        levels = torch.where(
            torch.tensor([f in _CONTINUOUS for f in ALL_FIELDS]), torch.ones_like(lo), (hi - lo + 1) / 4)
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)
        self.register_buffer("multiplier", levels.clamp(1.0, MAX_MULTIPLIER))
        self._warned: set[str] = set()

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {f: (float(a), float(b)) for f, a, b in zip(ALL_FIELDS, self.lo, self.hi)}

    def forward(self, values: torch.Tensor, fields: Sequence[str]) -> torch.Tensor:
        idx = [ALL_FIELDS.index(f) for f in fields]
        x = torch.stack([transform(f, values[..., i]) for i, f in enumerate(fields)], dim=-1)
        lo, hi, mult = self.lo[idx], self.hi[idx], self.multiplier[idx]
        self._warn_out_of_range(x, lo, hi, fields)
        span = (hi - lo).clamp_min(1e-6)
        centred = torch.where(hi > lo, 2 * (x - lo) / span - 1, x - lo)
        return centred * mult

    def _warn_out_of_range(self, x, lo, hi, fields) -> None:
        if x.numel() == 0:
            return
        flat = x.reshape(-1, len(fields))
        tol = 1e-4 * (hi - lo).abs() + 1e-4
        below, above = flat.amin(0) < lo - tol, flat.amax(0) > hi + tol
        for i, f in enumerate(fields):
            if (below[i] or above[i]) and f not in self._warned:
                self._warned.add(f)
                warnings.warn(
                    f"descriptor field {f!r} has values in [{flat[:, i].min():.3g}, {flat[:, i].max():.3g}] "
                    f"outside the range [{lo[i]:.3g}, {hi[i]:.3g}] this generator was built for; build it "
                    "on specs that cover this target (Generator([spec_a, spec_b], ...))", stacklevel=3)


class FourierFeatures(nn.Module):
    """Gaussian Fourier features ``[sin(2π x B), cos(2π x B)]`` with a fixed ``B ~ N(0, σ²)``.

    Args:
        in_fields: number of input attributes.
        num_features: output size (even).
        sigma: std of the entries of ``B``.
        seed: seed of ``B`` (a buffer, saved with the generator).

    Shapes:
        input ``(..., in_fields)``, output ``(..., num_features)``.
    """

    def __init__(self, in_fields: int, num_features: int, sigma: float = 1.0, seed: int = 0):
        super().__init__()
        if num_features % 2:
            raise ValueError(f"num_features must be even, got {num_features}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("B", torch.randn(in_fields, num_features // 2, generator=g) * sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * (x @ self.B)
        return torch.cat([torch.sin(z), torch.cos(z)], dim=-1)
