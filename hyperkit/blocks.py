"""The generator's building blocks: its own layer types (each registering its describer beside
itself, so that a generator can be described and generated — recursive hypernetworks), the
residual trunk and the task-structure encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from hyperkit.spec import LAYER_FIELDS, LayerDescription, ParamInfo, register_layer

# Per-layer structure tokens of the task-structure encoder.
TOKEN_FIELDS = ("layer", "depth", "layer_type") + LAYER_FIELDS
_ROW_COL = ("row", "col")


class AxisProjection(nn.Linear):
    """Projection of an axis field's Fourier features, initialised ``N(0, 2 / in_features)``:
    unit-variance outputs keep the multiplicative axis term above the context term. A class of
    its own so a generated generator (recursion) starts with this init, not ``nn.Linear``'s."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / in_features))


@register_layer(AxisProjection, "axis_projection")
def describe_axis_projection(m: AxisProjection) -> LayerDescription:
    return LayerDescription({"in_size": m.in_features, "out_size": m.out_features},
                            {"weight": ParamInfo("weight", _ROW_COL, std=math.sqrt(2.0 / m.in_features))})


class LearnedVectors(nn.Module):
    """A few learned vectors, initialised ``N(0, std²)``: the generator's row/column side codes and
    the flat head's latent. A module of its own so a generator can itself be described and
    generated (recursive hypernetworks).

    Shapes:
        weight ``(num, width)``.
    """

    def __init__(self, num: int, width: int, std: float):
        super().__init__()
        self.std = std
        self.weight = nn.Parameter(torch.randn(num, width) * std)


@register_layer(LearnedVectors, "learned_vectors")
def describe_learned_vectors(m: LearnedVectors) -> LayerDescription:
    num, width = m.weight.shape
    return LayerDescription({"in_size": num, "out_size": width},
                            {"weight": ParamInfo("embedding", _ROW_COL, std=m.std)})


class ResidualBlock(nn.Module):
    """Pre-activation residual block: ``x + W₂ σ(LN(W₁ σ(LN(x))))`` (He et al., 2016)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm1, self.fc1 = nn.LayerNorm(width), nn.Linear(width, width)
        self.norm2, self.fc2 = nn.LayerNorm(width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(F.gelu(self.norm1(x)))
        return x + self.fc2(F.gelu(self.norm2(h)))


class Trunk(nn.Module):
    """Residual blocks followed by a final LayerNorm. Shapes: ``(..., width)`` → ``(..., width)``."""

    def __init__(self, width: int, num_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(num_blocks)])
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(x))


class StructureEncoder(nn.Module):
    """Task-structure encoder: one transformer layer over per-layer structure tokens, mean-pooled,
    then an MLP whose last layer starts at zero (so it starts as a no-op on the trunk).

    Shapes:
        tokens ``(num_layers, len(TOKEN_FIELDS))`` normalised → ``(width,)``; a list of such
        token tensors (several targets) → ``(len(list), width)``.
    """

    def __init__(self, width: int, num_heads: int = 4):
        super().__init__()
        self.embed = nn.Linear(len(TOKEN_FIELDS), width)
        self.layer = nn.TransformerEncoderLayer(width, num_heads, 2 * width, dropout=0.0,
                                                batch_first=True, norm_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, tokens: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(tokens, torch.Tensor):
            h = self.layer(self.embed(tokens).unsqueeze(0)).squeeze(0)
            return self.mlp(h.mean(0))
        # Several targets at once: pad to the longest, mask the padding, average the real layers.
        lengths = torch.tensor([len(t) for t in tokens], device=tokens[0].device)
        padded = nn.utils.rnn.pad_sequence(list(tokens), batch_first=True)
        keep = torch.arange(padded.shape[1], device=padded.device) < lengths[:, None]
        h = self.layer(self.embed(padded), src_key_padding_mask=~keep)
        return self.mlp((h * keep[..., None]).sum(1) / lengths[:, None])
