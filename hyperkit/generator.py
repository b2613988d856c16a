"""The generator core: descriptors → Fourier features → residual trunk → head → named weights.

Heads:
  * ``"scalar"`` — one value per weight from that weight's full descriptor (UHN).
  * ``"lowrank"`` — per-row factors ``U`` and per-column factors ``V`` from row and column
    descriptors, centred over the rows (columns); ``W = U Vᵀ / √r + a 1ᵀ / √n + 1 bᵀ / √m``
    with per-row offsets ``a`` and per-column offsets ``b`` (``m × n`` matrix) from the same
    descriptors. Cost grows with rows + columns, not rows × columns.
  * ``"flat"`` — a linear map from a condition vector to every weight (classic hypernetwork,
    MotherNet's decoder). Its size grows with the target; the other two heads' does not.

Every generated tensor is ``init_mean + scale · head_output`` where ``init_mean`` and ``scale``
are the default-init statistics from the descriptors (``scale_by_init=True``), so one head output
range serves embeddings (std 1) and 4096-wide layers (std 0.009) alike.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from hyperkit.descriptors import (AXIS_FIELDS, CONTEXT_FIELDS, GLOBAL_FIELDS, LAYER_FIELDS, TASK_FIELDS, TargetSpec,
                                  sequence_of, stable_id)
from hyperkit.encoding import FourierFeatures, Normalizer, field_ranges

HEADS = ("scalar", "lowrank", "flat")
_TOKEN_FIELDS = ("layer", "depth", "layer_type") + LAYER_FIELDS
# shared_trunk=True: the fields that differ between targets (the layer's relative depth, the
# model's size, the task) leave the trunk input and modulate its output; the rest stay.
_MEMBER_FIELDS = ("depth",) + GLOBAL_FIELDS + TASK_FIELDS
_LOCAL_FIELDS = tuple(f for f in CONTEXT_FIELDS if f not in _MEMBER_FIELDS)


@functools.cache
def _field_columns(fields: tuple[str, ...]) -> list[int]:
    """Columns of ``fields`` in a ``(…, len(CONTEXT_FIELDS))`` context tensor."""
    return [CONTEXT_FIELDS.index(f) for f in fields]


@dataclasses.dataclass(frozen=True, eq=False)
class _MergedSpec(TargetSpec):
    """Several targets seen as one (their tensors side by side), so that the low-rank head batches
    them in one pass: one descriptor table, one trunk pass, one product per shape group. Each
    tensor keeps the context (layer index, depth, global and task fields) of its own target."""

    sources: tuple[TargetSpec, ...] = ()

    @classmethod
    def of(cls, specs: Sequence[TargetSpec]) -> "_MergedSpec":
        params, layers, origin = {}, [], {}
        for i, spec in enumerate(specs):
            offset = len(layers)
            layers += [dataclasses.replace(l, index=l.index + offset) for l in spec.layers]
            for name, p in spec.params.items():
                params[f"{i}/{name}"] = dataclasses.replace(p, layer=p.layer + offset)
                origin[f"{i}/{name}"] = (spec, name)
        merged = cls(params, tuple(layers), {}, {}, "merged", sources=tuple(specs))
        merged._cache["origin"] = origin
        return merged

    def context(self, name: str) -> list[float]:
        spec, own = self._cache["origin"][name]
        return spec.context(own)


class AxisProjection(nn.Linear):
    """Projection of an axis field's Fourier features, initialised ``N(0, 2 / in_features)``:
    unit-variance outputs keep the multiplicative axis term above the context term. A class of
    its own so a generated generator (recursion) starts with this init, not ``nn.Linear``'s."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / in_features))


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
        tokens ``(num_layers, len(_TOKEN_FIELDS))`` normalised → ``(width,)``; a list of such
        token tensors (several targets) → ``(len(list), width)``.
    """

    def __init__(self, width: int, num_heads: int = 4):
        super().__init__()
        self.embed = nn.Linear(len(_TOKEN_FIELDS), width)
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


class Generator(nn.Module):
    """Descriptor-conditioned generator of all weights of one or more target networks.

    Based on "Universal Hypernetworks for Arbitrary Models" (scalar head), with a low-rank head
    (``W = U Vᵀ``) and a flat head (MotherNet's decoder). Descriptor ranges for normalisation are
    fixed from ``specs`` at construction and saved in the state dict.

    Args:
        specs: the :class:`TargetSpec` (or list of them) this generator is built for.
        head: ``"scalar"`` | ``"lowrank"`` | ``"flat"``.
        width: trunk width (default 128, UHN's).
        num_blocks: residual blocks in the trunk.
        fourier_features: size of the descriptor encoding (default 2048, UHN's); half goes to the
            context fields, half is split among the six axis fields.
        sigma: std of the Fourier matrices.
        context_sigma: std of the context fields' Fourier matrix (default ``sigma``). The context
            holds the structure (sizes, depth, task); a small value (0.1–0.3) makes the encoding
            smooth in it, so a generator serving several architectures can interpolate to
            unseen ones; at ``sigma`` nearby structures get unrelated codes.
        rank: rank ``r`` of the low-rank head.
        condition_size: size of an optional condition vector (task embedding, dataset embedding);
            0 for none. Required (> 0) for a conditional flat head.
        structure_encoder: add the task-structure encoder's output to the trunk input.
        chunk_size: weights per trunk pass (bounds memory); ``None`` for one pass.
        checkpoint: recompute chunk activations in backward instead of storing them.
        shared_trunk: low-rank head: the trunk sees only a tensor's own descriptors (layer index,
            type, role, sizes, positions); the target's relative depth, global and task fields,
            its structure code and the condition modulate the trunk's output instead (``h · (1 +
            γ) + β``, starting at the identity). Rows with equal descriptors — the same layer of
            several architectures in :meth:`generate_many`, or one target under a batch of
            conditions — then share one trunk pass. Off: every field enters the trunk input.
        scale_by_init: emit ``init_mean + init_scale · output`` per tensor (recommended).
        center: scalar head: subtract from each generated matrix (two or more dimensions) its own
            mean, so its mean stays its init mean — the counterpart of the low-rank head's centred
            factors. A shift shared by every weight of a matrix is then impossible: uncentred, a
            few steps can push a whole first layer negative and silence every ReLU (the digits MLP
            at 512 Fourier features fell to chance in five steps). The mean needs the whole tensor,
            so :meth:`sample` then generates everything and subsamples.
        seed: seed of the fixed Fourier matrices.

    Shapes:
        condition: ``(condition_size,)`` or ``(batch, condition_size)``.
        output: ``{name: (*shape)}`` or ``{name: (batch, *shape)}``.

    Example:
        >>> import torch.nn as nn, hyperkit
        >>> target = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
        >>> spec = hyperkit.describe(target)
        >>> gen = hyperkit.Generator(spec, head="lowrank", fourier_features=64, width=32)
        >>> params = gen(spec)
        >>> params["0.weight"].shape
        torch.Size([16, 4])
        >>> hyperkit.call(target, params, torch.randn(5, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(self, specs: TargetSpec | Sequence[TargetSpec], head: str = "scalar", *, width: int = 128,
                 num_blocks: int = 2, fourier_features: int = 2048, sigma: float = 1.0, rank: int = 8,
                 context_sigma: float | None = None, condition_size: int = 0, structure_encoder: bool = False,
                 chunk_size: int | None = 65536, checkpoint: bool = False, scale_by_init: bool = True,
                 center: bool = False, shared_trunk: bool = False, seed: int = 0):
        super().__init__()
        specs = sequence_of(specs)
        if not specs:
            raise ValueError("Generator needs at least one TargetSpec (from hyperkit.describe)")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
        if head == "flat" and len(specs) != 1:
            raise ValueError("the flat head emits one fixed target; give exactly one spec")
        if shared_trunk and head != "lowrank":
            raise ValueError(f"shared_trunk needs head='lowrank' (got head={head!r}): the scalar head's "
                             "trunk rows are single weights, which targets never share")
        self.head, self.width, self.rank = head, width, rank
        self.condition_size, self.chunk_size, self.checkpoint = condition_size, chunk_size, checkpoint
        self.scale_by_init, self.center, self.shared_trunk = scale_by_init, center, shared_trunk
        self.default_spec = specs[0]
        self.normalizer = Normalizer(field_ranges(specs))
        self.condition_in = nn.Linear(condition_size, width) if condition_size else None
        self.trunk = Trunk(width, num_blocks)
        if head == "flat":
            self._build_flat(specs[0])
        else:
            self._build_descriptor_path(fourier_features, sigma, context_sigma, seed, structure_encoder)

    def _build_descriptor_path(self, fourier_features, sigma, context_sigma, seed, structure_encoder) -> None:
        context_dim = 2 * (fourier_features // 4)
        axis_dim = max(2, 2 * (fourier_features // 2 // len(AXIS_FIELDS) // 2))
        context_sigma = sigma if context_sigma is None else context_sigma
        local = _LOCAL_FIELDS if self.shared_trunk else CONTEXT_FIELDS
        self.context_features = FourierFeatures(len(local), context_dim, context_sigma, seed)
        self.axis_features = nn.ModuleDict(
            {f: FourierFeatures(1, axis_dim, sigma, seed + 1 + i) for i, f in enumerate(AXIS_FIELDS)})
        self.context_in = nn.Linear(context_dim, self.width)
        # Axis fields enter multiplicatively: the product over a tensor's dimensions of these
        # projections is a factorised form of joint Fourier features (sin(a + b) = sin a cos b +
        # cos a sin b), so every (row, column) pair gets its own trunk input. An additive path
        # (base + a_row + b_col) was tried first: through a near-linear trunk it made generated
        # matrices close to rank two and training stalled. Unit variance keeps it above the context.
        self.axis_in = nn.ModuleDict({f: AxisProjection(axis_dim, self.width) for f in AXIS_FIELDS})
        self.structure = StructureEncoder(self.width) if structure_encoder else None
        if self.shared_trunk:
            self.member_features = FourierFeatures(len(_MEMBER_FIELDS), context_dim, context_sigma,
                                                   seed + 1 + len(AXIS_FIELDS))
            self.member_in = nn.Linear(context_dim, self.width)
            self.film = nn.Linear(self.width, 2 * self.width)  # → (γ, β), zero: the identity at first
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        if self.head == "scalar":
            self.out = nn.Linear(self.width, 1)
        else:
            self.side = LearnedVectors(2, self.width, std=0.02)  # row side vs column side
            # Each emits a factor row (rank values) and an offset (last value, starting at zero).
            self.out_u = nn.Linear(self.width, self.rank + 1)
            self.out_v = nn.Linear(self.width, self.rank + 1)
            with torch.no_grad():
                for layer in (self.out_u, self.out_v):
                    layer.weight[-1].zero_()
                    layer.bias[-1].zero_()
            self.out = nn.Linear(self.width, 1)  # 0-d and 1-d tensors: one value per row

    def _build_flat(self, spec: TargetSpec) -> None:
        self.latent = None if self.condition_size else LearnedVectors(1, self.width, std=1.0)
        self.out = nn.Linear(self.width, spec.num_weights)
        self._flat_key = spec.key()

    # ------------------------------------------------------------------ public API

    def forward(self, spec: TargetSpec | None = None, condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Generate every parameter of ``spec`` (default: the first spec it was built on)."""
        spec = spec or self.default_spec
        return spec.unflatten(self.flat(spec, condition))

    def flat(self, spec: TargetSpec | None = None, condition: torch.Tensor | None = None) -> torch.Tensor:
        """All weights of ``spec`` as one ``(num_weights,)`` or ``(batch, num_weights)`` tensor."""
        spec = spec or self.default_spec
        cond = self._condition(condition)
        if self.head == "flat":
            out = self._flat_head(spec, cond)
        elif self.head == "scalar":
            out = self._scalar_head(spec, cond, [torch.arange(p.numel) for p in spec.params.values()])
            if self.center:
                out = [v - v.mean(-1, keepdim=True) if len(p.shape) >= 2 else v
                       for p, v in zip(spec.params.values(), out)]
            out = torch.cat(out, dim=-1)
        else:
            out = self._lowrank_head(spec, cond)
        return self._rescale(spec, out)

    def generate_many(self, specs: Sequence[TargetSpec],
                      conditions: Sequence[torch.Tensor | None] | None = None) -> list[dict[str, torch.Tensor]]:
        """Weights of several targets in one pass (multi-model, multi-task training).

        Targets with equal descriptors and the same condition tensor are generated once and share
        the result. With the low-rank head, the distinct targets are generated as one merged
        target — one descriptor table, one trunk pass over all their rows and columns, one batched
        product per matrix shape — when their conditions have the same batch shape; other heads
        generate each distinct target in turn.

        Args:
            specs: described targets (any mix of architectures).
            conditions: one condition per spec (``None`` entries for none); default: no conditions.

        Returns:
            ``[{name: tensor}, ...]``, one dict per spec, in order.

        Example:
            >>> import torch.nn as nn, hyperkit
            >>> small, wide = (hyperkit.describe(nn.Sequential(nn.Linear(4, n), nn.ReLU(), nn.Linear(n, 2)))
            ...                for n in (8, 32))
            >>> gen = hyperkit.Generator([small, wide], head="lowrank", width=16, fourier_features=32)
            >>> [p["0.weight"].shape for p in gen.generate_many([small, wide, small])]
            [torch.Size([8, 4]), torch.Size([32, 4]), torch.Size([8, 4])]
        """
        conditions = list(conditions) if conditions is not None else [None] * len(specs)
        if len(conditions) != len(specs):
            raise ValueError(f"got {len(conditions)} conditions for {len(specs)} specs; give one per spec (or None)")
        slots: dict[tuple, int] = {}
        distinct: list[tuple[TargetSpec, torch.Tensor | None]] = []
        for spec, condition in zip(specs, conditions):
            key = (spec.key(), None if condition is None else id(condition))
            if key not in slots:
                slots[key] = len(distinct)
                distinct.append((spec, condition))
        conds = [self._condition(c) for _, c in distinct]
        shapes = {None if c is None else tuple(c.shape) for c in conds}
        if self.head == "lowrank" and len(shapes) == 1:
            # Generate the targets as one merged target; each tensor gets its own target's condition.
            merged = self._merged([spec for spec, _ in distinct])
            cond = None
            if conds[0] is not None:
                counts = torch.tensor([len(spec.params) for spec, _ in distinct], device=conds[0].device)
                cond = torch.stack(conds, dim=-2).repeat_interleave(counts, dim=-2)
            flat = self._rescale(merged, self._lowrank_head(merged, cond))
            flats = flat.split([spec.num_weights for spec, _ in distinct], dim=-1)
        else:
            flats = [self.flat(spec, condition) for spec, condition in distinct]
        generated = [spec.unflatten(flat) for (spec, _), flat in zip(distinct, flats)]
        return [generated[slots[(spec.key(), None if c is None else id(c))]] for spec, c in zip(specs, conditions)]

    def _merged(self, specs: list[TargetSpec]) -> _MergedSpec:
        """The merged spec of ``specs`` (cached: its descriptor tables and plan are built once)."""
        cache = self.__dict__.setdefault("_merged_specs", {})
        key = tuple(id(s) for s in specs)
        entry = cache.get(key)
        if entry is None or any(a is not b for a, b in zip(entry.sources, specs)):
            if len(cache) >= 64:  # sampled architectures: keep the cache bounded
                cache.clear()
            entry = cache[key] = _MergedSpec.of(specs)
        return entry

    def sample(self, spec: TargetSpec, per_tensor: int, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Generated values at up to ``per_tensor`` random positions of each tensor (flattened).

        The scalar head evaluates only those positions, which makes statistics matching cheap
        for large targets; the other heads generate everything and subsample.
        """
        picks = [torch.randperm(p.numel, generator=generator)[:per_tensor] if p.numel > per_tensor
                 else torch.arange(p.numel) for p in spec.params.values()]
        return dict(zip(spec.params, self._values_at(spec, picks, condition)))

    def sample_grid(self, spec: TargetSpec, rows: int, cols: int, condition: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Generated values on a random grid of up to ``rows × cols`` positions of every tensor
        with at least two dimensions and two rows (dimensions after the first are flattened):
        ``{name: (..., k_rows, k_cols)}``, for statistics across rows such as their correlation."""
        picks, grids = [], {}
        for name, p in spec.params.items():
            if len(p.shape) < 2 or p.shape[0] < 2:
                picks.append(torch.zeros(0, dtype=torch.long))
                continue
            width = p.numel // p.shape[0]
            r = torch.randperm(p.shape[0], generator=generator)[:rows]
            c = torch.randperm(width, generator=generator)[:cols]
            grids[name] = (len(r), len(c))
            picks.append((r[:, None] * width + c[None, :]).flatten())
        values = dict(zip(spec.params, self._values_at(spec, picks, condition)))
        return {name: values[name].unflatten(-1, grid) for name, grid in grids.items()}

    def _values_at(self, spec: TargetSpec, picks: list[torch.Tensor], condition) -> list[torch.Tensor]:
        """Generated values of each tensor at flat positions ``picks[t]`` (init scaling applied)."""
        if self.head != "scalar" or self.center:
            flat = self.flat(spec, condition)
            return [flat[..., start + idx.to(flat.device)] for start, idx in zip(spec.offsets.values(), picks)]
        values = self._scalar_head(spec, self._condition(condition), picks)
        out = []
        for p, v in zip(spec.params.values(), values):
            mean, scale = (p.init_mean, p.scale) if self.scale_by_init else (0.0, 1.0)
            out.append(mean + scale * v)
        return out

    # ------------------------------------------------------------------ shared pieces

    def _condition(self, condition: torch.Tensor | None) -> torch.Tensor | None:
        if self.condition_size == 0:
            if condition is not None:
                raise ValueError("this generator takes no condition (condition_size=0); "
                                 "build it with condition_size=... to condition it")
            return None
        if condition is None or condition.dim() not in (1, 2) or condition.shape[-1] != self.condition_size:
            got = "None" if condition is None else tuple(condition.shape)
            raise ValueError(f"condition must have shape ({self.condition_size},) or "
                             f"(batch, {self.condition_size}); got {got}")
        return self.condition_in(condition)

    def _rescale(self, spec: TargetSpec, out: torch.Tensor) -> torch.Tensor:
        if not self.scale_by_init:
            return out
        key = ("init_vectors", str(out.device), out.dtype)
        if key not in spec._cache:
            # Built outside inference mode (and cloned): ``scale`` is saved for backward.
            with torch.inference_mode(False):
                spec._cache[key] = tuple(v.to(out.device, out.dtype, copy=True) for v in spec.init_vectors())
        mean, scale = spec._cache[key]
        return torch.addcmul(mean, scale, out)

    def _descriptors(self, spec: TargetSpec, device) -> dict:
        """Raw descriptor tensors of ``spec``, cached per device (descriptors are deterministic).

        Each axis field keeps its distinct values (``unique``) and, per slot, indices into them
        (``inverse``): the Fourier features and their projection run once per distinct value."""
        key = ("descriptors", str(device))
        if key not in spec._cache:
            # Built outside inference mode: these index tensors are saved for backward later.
            with torch.inference_mode(False):
                spec._cache[key] = self._build_descriptors(spec, device)
        return spec._cache[key]

    @staticmethod
    def _build_descriptors(spec: TargetSpec, device) -> dict:
        context = torch.tensor([spec.context(n) for n in spec.params], device=device)
        per_field: dict[str, list[torch.Tensor]] = {f: [] for f in AXIS_FIELDS}
        slots = []  # (tensor index, dim, field, position in per_field[field])
        for t, p in enumerate(spec.params.values()):
            for d, (size, axis) in enumerate(zip(p.shape, p.axes)):
                for a in axis:
                    slots.append((t, d, a.field, len(per_field[a.field])))
                    per_field[a.field].append(a.values(size).float())
        unique, inverse = {}, {}
        for f, values in per_field.items():
            if values:
                u, inv = torch.unique(torch.cat(values), return_inverse=True)
                unique[f] = u.to(device)
                inverse[f] = [i.to(device) for i in inv.split([len(v) for v in values])]
        tokens = torch.tensor([[l.index, l.index / max(len(spec.layers) - 1, 1), stable_id(l.type)]
                               + [l.structure.get(f, 0.0) for f in LAYER_FIELDS] for l in spec.layers],
                              device=device, dtype=torch.float32)
        return {"context": context, "unique": unique, "inverse": inverse, "slots": slots, "tokens": tokens}

    def _fourier(self, spec: TargetSpec) -> dict:
        """Normalised descriptors and their Fourier features for ``spec``: constant for fixed
        buffers, so computed once and cached in ``spec`` for this generator.

        The entry is rebuilt whenever a buffer it depends on is replaced (``.to(device/dtype)``,
        ``functional_call``) or modified in place (``load_state_dict``): it keeps the buffers it
        was built from and their version counters. Features are built without autograd, so the
        cache holds no graph."""
        sources = [self.normalizer.lo, self.normalizer.hi, self.normalizer.multiplier, self.context_features.B,
                   *(self.axis_features[f].B for f in AXIS_FIELDS)]
        if self.shared_trunk:
            sources.append(self.member_features.B)
        key = ("fourier", id(self))
        entry = spec._cache.get(key)
        if entry is None or any(a is not b or a._version != v for (a, v), b in zip(entry["sources"], sources)):
            desc = self._descriptors(spec, self.context_in.weight.device)
            with torch.inference_mode(False), torch.no_grad():
                context = self.normalizer(desc["context"], CONTEXT_FIELDS)
                entry = {
                    "sources": [(b, b._version) for b in sources],
                    "context": self.context_features(context[:, _field_columns(_LOCAL_FIELDS)]
                                                     if self.shared_trunk else context),
                    "member": (self.member_features(context[:, _field_columns(_MEMBER_FIELDS)])
                               if self.shared_trunk else None),
                    "axes": {f: self.axis_features[f](self.normalizer(u.unsqueeze(-1), (f,)))
                             for f, u in desc["unique"].items()},
                    "tokens": (self.normalizer(desc["tokens"], _TOKEN_FIELDS)  # merged: per source
                               if self.structure is not None and not isinstance(spec, _MergedSpec) else None),
                }
            spec._cache[key] = entry
        return entry

    def _base(self, spec: TargetSpec, cond: torch.Tensor | None) -> torch.Tensor:
        """Per-tensor trunk input from the context fields: ``(batch?, T, W)`` (``(T, W)`` from the
        local fields alone with ``shared_trunk``)."""
        base = self.context_in(self._fourier(spec)["context"])
        return base if self.shared_trunk else self._add_target(spec, cond, base)

    def _modulation(self, spec: TargetSpec, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``shared_trunk``: per-tensor ``(γ, β)``, each ``(batch?, T, W)``, from the fields that
        differ between targets, the structure code and the condition."""
        member = self._add_target(spec, cond, self.member_in(self._fourier(spec)["member"]))
        gamma, beta = self.film(F.gelu(member)).chunk(2, dim=-1)
        return gamma, beta

    def _add_target(self, spec: TargetSpec, cond: torch.Tensor | None, base: torch.Tensor) -> torch.Tensor:
        """``base`` ``(T, W)`` plus each tensor's target structure code and condition."""
        if self.structure is not None:
            if isinstance(spec, _MergedSpec):  # each target's own layers, broadcast to its tensors
                codes = self.structure([self._fourier(s)["tokens"] for s in spec.sources])
                counts = torch.tensor([len(s.params) for s in spec.sources], device=base.device)
                base = base + codes.repeat_interleave(counts, dim=0)
            else:
                base = base + self.structure(self._fourier(spec)["tokens"])
        if cond is not None:  # a merged spec's condition is already per tensor
            base = base + (cond if isinstance(spec, _MergedSpec) else cond.unsqueeze(-2))
        return base

    def _encode(self, spec: TargetSpec, cond: torch.Tensor | None):
        """Trunk inputs before broadcasting: per-tensor context ``(batch?, T, W)`` and per-dimension
        axis projections ``contrib[t][d]`` of shape ``(size_d, W)`` (``None`` where no field maps to
        that dimension). The trunk input of weight ``(i_0, i_1, …)`` of tensor ``t`` is
        ``base_t + Π_d contrib[t][d][i_d]``."""
        desc = self._descriptors(spec, self.context_in.weight.device)
        base = self._base(spec, cond)
        projected = {f: self.axis_in[f](x) for f, x in self._fourier(spec)["axes"].items()}
        contrib = [[None] * len(p.shape) for p in spec.params.values()]
        for t, d, f, i in desc["slots"]:
            c = projected[f][desc["inverse"][f][i]]
            contrib[t][d] = c if contrib[t][d] is None else contrib[t][d] + c
        return base, contrib

    @staticmethod
    def _combine(base: torch.Tensor, contrib: list, dims, index) -> torch.Tensor:
        """``base + Π_d contrib[d][index(d)]`` over the dimensions ``dims`` that have fields."""
        product = None
        for d in dims:
            if contrib[d] is not None:
                c = contrib[d][index(d)]
                product = c if product is None else product * c
        return base if product is None else base + product

    def _run_chunks(self, build, total: int, head) -> torch.Tensor:
        """Run ``head(trunk(build(start, end)))`` over ``[0, total)`` in chunks of ``chunk_size``.
        A single chunk is returned as it is: concatenating one piece would copy it (and its
        gradient), a full pass over every trunk row."""
        size = self.chunk_size or max(total, 1)
        outs = []
        for start in range(0, total, size):
            end = min(start + size, total)
            fn = lambda s=start, e=end: head(self.trunk(build(s, e)))  # noqa: E731
            if self.checkpoint and torch.is_grad_enabled():
                outs.append(activation_checkpoint(fn, use_reentrant=False))
            else:
                outs.append(fn())
        if len(outs) <= 1:
            return outs[0] if outs else None
        return torch.cat(outs, dim=-2)

    # ------------------------------------------------------------------ heads

    def _scalar_head(self, spec: TargetSpec, cond, picks: list[torch.Tensor]) -> list[torch.Tensor]:
        base, contrib = self._encode(spec, cond)
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
                h = self._combine(base[..., t, :].unsqueeze(-2), contrib[t], range(len(shape)),
                                  lambda d: (sel // strides[d]) % shape[d])
                parts.append(h.expand(*h.shape[:-2], len(sel), h.shape[-1]))
            return torch.cat(parts, dim=-2)

        out = self._run_chunks(build, offsets[-1], self.out).squeeze(-1)
        return list(out.split([len(idx) for _, idx, _, _ in segments], dim=-1))

    def _lowrank_plan(self, spec: TargetSpec) -> dict:
        """Index tensors that batch the low-rank head over all tensors of ``spec`` (cached per device).

        Trunk inputs are, in this order, the rows of the 0-d and 1-d tensors (a 0-d tensor has
        one), the rows of the matrices and their columns (all dimensions after the first,
        flattened); matrices of equal shape are adjacent, so one batched ``u @ vᵀ`` serves them.
        Each input is ``base[t] + side[s] + Π_d Σ_k table[index[d][n, k]]`` where ``table`` holds
        the projected distinct values of every axis field followed by a zero row (padding of the
        sum) and a one row (padding of the product). ``order`` puts the outputs in ``spec`` order.
        """
        device = self.context_in.weight.device
        key = ("lowrank_plan", str(device), self.shared_trunk)
        if key not in spec._cache:
            with torch.inference_mode(False):
                desc = self._descriptors(spec, device)
                plan = self._build_lowrank_plan(spec, desc, device)
                if self.shared_trunk:
                    plan["shared"] = self._shared_rows(desc, plan)
                spec._cache[key] = plan
        return spec._cache[key]

    @staticmethod
    def _shared_rows(desc: dict, plan: dict) -> dict:
        """``shared_trunk``: the distinct trunk rows of a plan — rows whose tensors have equal local
        context fields, on the same side, with the same axis-table indices — as a plan of their
        own (``tensor``, ``side``, ``index`` of one representative each) and ``inverse``, which
        maps every row of ``plan`` to its distinct row."""
        _, local = torch.unique(desc["context"][:, _field_columns(_LOCAL_FIELDS)], dim=0, return_inverse=True)
        keys = torch.cat([local.to(plan["tensor"].device)[plan["tensor"], None], plan["side"][:, None],
                          *plan["index"]], dim=1)
        _, inverse = torch.unique(keys, dim=0, return_inverse=True)
        rows = torch.arange(len(keys), device=keys.device)
        first = torch.full((int(inverse.max()) + 1,), len(keys), device=keys.device).scatter_reduce(
            0, inverse, rows, "amin")
        return {"tensor": plan["tensor"][first], "side": plan["side"][first],
                "index": [i[first].contiguous() for i in plan["index"]], "inverse": inverse}

    @staticmethod
    def _build_lowrank_plan(spec: TargetSpec, desc: dict, device) -> dict:
        fields = list(desc["unique"])
        offset = dict(zip(fields, itertools.accumulate((len(desc["unique"][f]) for f in fields), initial=0)))
        zero = sum(len(u) for u in desc["unique"].values())
        dims = [[[] for _ in p.shape] for p in spec.params.values()]  # table indices per (t, d, field)
        for t, d, f, i in desc["slots"]:
            dims[t][d].append(desc["inverse"][f][i].cpu() + offset[f])
        shape = (max([len(p.shape) - 1 for p in spec.params.values()] + [1]),
                 max([len(fs) for ds in dims for fs in ds] + [1]))

        def inputs(t: int, side: int, n: int, terms_per_dim: list) -> tuple:
            index = torch.full((n, *shape), zero, dtype=torch.long)
            index[:, :, 0] = zero + 1  # dimensions without fields: factor 1
            for d, terms in enumerate(terms_per_dim):
                index[:, d, 0] = zero  # a dimension with no field adds nothing
                for k, term in enumerate(terms):
                    index[:, d, k] = term
            return t, side, index

        vectors, groups = [], {}
        for t, p in enumerate(spec.params.values()):
            if len(p.shape) <= 1:  # 0-d: the context alone; 1-d: row side
                vectors.append(inputs(t, 0, p.shape[0], [dims[t][0]]) if p.shape else inputs(t, 2, 1, [[]]))
                continue
            j = torch.arange(math.prod(p.shape[1:]))
            strides = [math.prod(p.shape[d + 1:]) for d in range(len(p.shape))]
            col_terms = [[term[(j // strides[d]) % p.shape[d]] for term in dims[t][d]] for d in range(1, len(p.shape))]
            groups.setdefault((p.shape[0], len(j)), []).append(
                (inputs(t, 0, p.shape[0], [dims[t][0]]), inputs(t, 1, len(j), col_terms if any(col_terms) else [[]])))
        rows = [r for members in groups.values() for r, _ in members]
        cols = [c for members in groups.values() for _, c in members]
        entries = vectors + rows + cols
        sizes = torch.tensor([len(index) for _, _, index in entries])
        numel = [p.numel for p in spec.params.values()]
        start = dict(zip([t for t, _, _ in vectors + rows],
                         itertools.accumulate((numel[t] for t, _, _ in vectors + rows), initial=0)))
        order = torch.cat([torch.arange(start[t], start[t] + n) for t, n in enumerate(numel)])
        return {
            "tensor": torch.repeat_interleave(torch.tensor([t for t, _, _ in entries]), sizes).to(device),
            "side": torch.repeat_interleave(torch.tensor([s for _, s, _ in entries]), sizes).to(device),
            # Per dimension d: the (rows, terms) table indices whose rows are summed.
            "index": [i.contiguous() for i in torch.cat([index for _, _, index in entries]).to(device).unbind(1)],
            "splits": [sum(len(i) for _, _, i in part) for part in (vectors, rows, cols)],
            "groups": [(len(members), n_r, n_c) for (n_r, n_c), members in groups.items()],
            "order": None if torch.equal(order, torch.arange(len(order))) else order.to(device),
        }

    def _lowrank_inputs(self, spec: TargetSpec, cond, plan: dict) -> torch.Tensor:
        """Trunk inputs of the rows ``plan`` lists (every row and column of every tensor, or their
        distinct ones), ``(batch?, rows, W)``."""
        base = self._base(spec, cond)
        table = torch.cat([self.axis_in[f](x) for f, x in self._fourier(spec)["axes"].items()]
                          + [base.new_zeros(1, self.width), base.new_ones(1, self.width)])
        # A bag sum per dimension: gathering every term first made a (rows, dims, terms, W)
        # tensor, whose backward (a stack) was the slowest step for the transformer family.
        summed = [F.embedding_bag(index, table, mode="sum") for index in plan["index"]]
        side = torch.cat([self.side.weight, self.side.weight.new_zeros(1, self.width)])
        return base[..., plan["tensor"], :] + side[plan["side"]] + functools.reduce(torch.mul, summed)

    def _lowrank_head(self, spec: TargetSpec, cond) -> torch.Tensor:
        plan = self._lowrank_plan(spec)
        if not self.shared_trunk:
            return self._lowrank_output(plan, self._trunk_rows(self._lowrank_inputs(spec, cond, plan)))
        shared = plan["shared"]
        h = self._trunk_rows(self._lowrank_inputs(spec, None, shared)).index_select(-2, shared["inverse"])
        gamma, beta = self._modulation(spec, cond)
        tensor = plan["tensor"]
        return self._lowrank_output(plan, torch.addcmul(beta[..., tensor, :], h, 1 + gamma[..., tensor, :]))

    def _trunk_rows(self, h0: torch.Tensor) -> torch.Tensor:
        """The trunk over trunk inputs ``(batch?, rows, W)``, in chunks."""
        rows = h0.shape[-2]
        build = lambda s, e: h0 if e - s == rows else h0[..., s:e, :]  # noqa: E731  (a slice's backward is a full copy)
        return self._run_chunks(build, rows, lambda x: x)

    def _lowrank_output(self, plan: dict, h: torch.Tensor) -> torch.Tensor:
        """Flat weights from the trunk outputs ``h`` of one spec's rows and columns."""
        h_vectors, h_rows, h_cols = h.split(plan["splits"], dim=-2)
        lead = h.shape[:-2]
        pieces = [self.out(h_vectors).squeeze(-1)]
        sizes = [(count, n_r, n_c) for count, n_r, n_c in plan["groups"]]
        u_all = self.out_u(h_rows).split([count * n_r for count, n_r, _ in sizes], dim=-2)
        v_all = self.out_v(h_cols).split([count * n_c for count, _, n_c in sizes], dim=-2)
        for (count, n_r, n_c), u, v in zip(sizes, u_all, v_all):
            u, v = u.view(*lead, count, n_r, self.rank + 1), v.view(*lead, count, n_c, self.rank + 1)
            (u, a), (v, b) = u.split([self.rank, 1], dim=-1), v.split([self.rank, 1], dim=-1)
            # Centred factors: a component shared by every row (or column) would make the
            # product close to rank one; the tensor's mean comes from init_mean instead.
            if n_r > 1:
                u = u - u.mean(-2, keepdim=True)
            if n_c > 1:
                v = v - v.mean(-2, keepdim=True)
            # Centring alone would force every row and column of W to sum to zero (a conv filter
            # blind to brightness, a unit blind to the input's total): the offsets give them back,
            # scaled so that offsets of order one give row (column) means of the size that
            # default init gives them.
            w = (u @ v.transpose(-1, -2) / math.sqrt(self.rank)
                 + a / math.sqrt(n_c) + b.transpose(-1, -2) / math.sqrt(n_r))
            pieces.append(w.reshape(*lead, -1))
        out = torch.cat(pieces, dim=-1)
        return out if plan["order"] is None else out.index_select(-1, plan["order"])

    def _flat_head(self, spec: TargetSpec, cond) -> torch.Tensor:
        if spec.key() != self._flat_key:
            raise ValueError("this flat-head generator was built for another target; the flat head "
                             "emits one fixed architecture (use head='scalar' or 'lowrank' for several)")
        z = cond if cond is not None else self.latent.weight[0]
        return self.out(self.trunk(z))

    def extra_repr(self) -> str:
        return (f"head={self.head!r}, width={self.width}, condition_size={self.condition_size}"
                + (", center=True" if self.center else "") + (", shared_trunk=True" if self.shared_trunk else ""))
