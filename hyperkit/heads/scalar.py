"""The scalar head: one value per weight from that weight's full descriptor (UHN)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from hyperkit.heads.base import Head
from hyperkit.spec import TargetSpec


class ScalarHead(Head):
    """One trunk pass per weight: the trunk input of weight ``(i_0, i_1, …)`` of tensor ``t`` is
    ``base_t + Π_d contrib_t,d[i_d]`` (context term plus the product of its axis projections), and
    ``out`` maps the trunk output to the weight (Chauhan et al., "Universal Hypernetworks for
    Arbitrary Models"). Cost grows with rows × columns; in exchange any set of positions can be
    evaluated alone, which makes statistics matching cheap for large targets.

    Args:
        center: subtract from each generated matrix (two or more dimensions) its own mean (see
            :class:`~hyperkit.generator.Generator`); positions then need the whole tensor.

    Shapes:
        trunk outputs ``(batch?, positions, width)`` → ``(batch?, positions)``.
    """

    name = "scalar"
    generates_positions = True

    def __init__(self, center: bool = False):
        self.center = center

    def layers(self, width: int, spec: TargetSpec) -> dict[str, nn.Module]:
        return {"out": nn.Linear(width, 1)}

    def emit(self, generator, spec: TargetSpec, cond: torch.Tensor | None) -> torch.Tensor:
        out = self.evaluate(generator, spec, cond, [torch.arange(p.numel) for p in spec.params.values()])
        if self.center:
            out = [v - v.mean(-1, keepdim=True) if len(p.shape) >= 2 else v
                   for p, v in zip(spec.params.values(), out)]
        return torch.cat(out, dim=-1)

    def values_at(self, generator, spec: TargetSpec, picks: list[torch.Tensor],
                  condition: torch.Tensor | None) -> list[torch.Tensor]:
        if self.center:  # the mean needs the whole tensor
            return super().values_at(generator, spec, picks, condition)
        values = self.evaluate(generator, spec, generator.project_condition(condition), picks)
        out = []
        for p, v in zip(spec.params.values(), values):
            mean, scale = (p.init_mean, p.scale) if generator.scale_by_init else (0.0, 1.0)
            out.append(mean + scale * v)
        return out

    def evaluate(self, generator, spec: TargetSpec, cond, picks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Unscaled head outputs of each tensor at flat positions ``picks[t]``."""
        base, contrib = trunk_inputs(generator, spec, cond)
        device = base.device
        segments = []  # (tensor index, flat indices, shape, strides) in output order
        for t, (p, idx) in enumerate(zip(spec.params.values(), picks)):
            strides = [math.prod(p.shape[d + 1:]) for d in range(len(p.shape))]
            segments.append((t, idx.to(device), p.shape, strides))
        offsets = [0]
        for _, idx, _, _ in segments:
            offsets.append(offsets[-1] + len(idx))

        def build(start: int, end: int) -> torch.Tensor:
            parts = []
            for (t, idx, shape, strides), lo, hi in zip(segments, offsets[:-1], offsets[1:]):
                if hi <= start or lo >= end:
                    continue
                sel = idx[max(start - lo, 0): min(end, hi) - lo]
                h = _combine(base[..., t, :].unsqueeze(-2), contrib[t], range(len(shape)),
                             lambda d: (sel // strides[d]) % shape[d])
                parts.append(h.expand(*h.shape[:-2], len(sel), h.shape[-1]))
            return torch.cat(parts, dim=-2)

        out = generator.run_chunks(build, offsets[-1], generator.out).squeeze(-1)
        return list(out.split([len(idx) for _, idx, _, _ in segments], dim=-1))

    def extra_repr(self) -> str:
        return ", center=True" if self.center else ""


def trunk_inputs(generator, spec: TargetSpec, cond: torch.Tensor | None):
    """Trunk inputs before broadcasting: per-tensor context ``(batch?, T, W)`` and per-dimension
    axis projections ``contrib[t][d]`` of shape ``(size_d, W)`` (``None`` where no field maps to
    that dimension). The trunk input of weight ``(i_0, i_1, …)`` of tensor ``t`` is
    ``base_t + Π_d contrib[t][d][i_d]``."""
    desc = generator.descriptors(spec)
    base = generator.context_input(spec, cond)
    projected = {f: generator.axis_in[f](x) for f, x in generator.fourier(spec)["axes"].items()}
    contrib = [[None] * len(p.shape) for p in spec.params.values()]
    for t, d, f, i in desc["slots"]:
        c = projected[f][desc["inverse"][f][i]]
        contrib[t][d] = c if contrib[t][d] is None else contrib[t][d] + c
    return base, contrib


def _combine(base: torch.Tensor, contrib: list, dims, index) -> torch.Tensor:
    """``base + Π_d contrib[d][index(d)]`` over the dimensions ``dims`` that have fields."""
    product = None
    for d in dims:
        if contrib[d] is not None:
            c = contrib[d][index(d)]
            product = c if product is None else product * c
    return base if product is None else base + product
