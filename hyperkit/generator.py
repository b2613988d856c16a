"""The generator core: descriptors → Fourier features → residual trunk → head → named weights.

:class:`Generator` composes the descriptor encoding (:mod:`hyperkit.encoding`), the residual trunk
(:mod:`hyperkit.blocks`) and one head (:mod:`hyperkit.heads`: scalar, low-rank or flat). Every
generated tensor is ``init_mean + scale · head_output`` where ``init_mean`` and ``scale`` are the
default-init statistics from the descriptors (``scale_by_init=True``), so one head output range
serves embeddings (std 1) and 4096-wide layers (std 0.009) alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from hyperkit.blocks import TOKEN_FIELDS, AxisProjection, StructureEncoder, Trunk
from hyperkit.encoding import (LOCAL_FIELDS, MEMBER_FIELDS, FourierFeatures, Normalizer, field_columns,
                               field_ranges)
from hyperkit.heads import make_head
from hyperkit.plans import GenerationPlans, MergedSpec
from hyperkit.spec import AXIS_FIELDS, CONTEXT_FIELDS, LAYER_FIELDS, TargetSpec, sequence_of, stable_id


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
            so :meth:`random_values` then generates everything and subsamples.
        seed: seed of the fixed Fourier matrices.

    Attributes:
        head: the :class:`~hyperkit.heads.Head` object (its layers are the generator's: ``out``, …).
        plans: the :class:`~hyperkit.plans.GenerationPlans` derived from the specs it generated for.

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
        self.head = make_head(head, specs, rank=rank, center=center, shared_trunk=shared_trunk,
                              condition_size=condition_size)
        self.width, self.rank = width, rank
        self.condition_size, self.chunk_size, self.checkpoint = condition_size, chunk_size, checkpoint
        self.scale_by_init, self.center, self.shared_trunk = scale_by_init, center, shared_trunk
        self.default_spec = specs[0]
        self.plans = GenerationPlans()
        self.normalizer = Normalizer(field_ranges(specs))
        self.condition_in = nn.Linear(condition_size, width) if condition_size else None
        self.trunk = Trunk(width, num_blocks)
        if self.head.uses_descriptors:
            self._build_encoding(fourier_features, sigma, context_sigma, seed, structure_encoder)
        for name, layer in self.head.layers(width, specs[0]).items():
            setattr(self, name, layer)  # the generator's own attributes: state-dict keys stay "out", …

    def _build_encoding(self, fourier_features, sigma, context_sigma, seed, structure_encoder) -> None:
        context_dim = 2 * (fourier_features // 4)
        axis_dim = max(2, 2 * (fourier_features // 2 // len(AXIS_FIELDS) // 2))
        context_sigma = sigma if context_sigma is None else context_sigma
        local = LOCAL_FIELDS if self.shared_trunk else CONTEXT_FIELDS
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
            self.member_features = FourierFeatures(len(MEMBER_FIELDS), context_dim, context_sigma,
                                                   seed + 1 + len(AXIS_FIELDS))
            self.member_in = nn.Linear(context_dim, self.width)
            self.film = nn.Linear(self.width, 2 * self.width)  # → (γ, β), zero: the identity at first
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    # ------------------------------------------------------------------ public API

    def forward(self, spec: TargetSpec | None = None, condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Generate every parameter of ``spec`` (default: the first spec it was built on)."""
        spec = spec or self.default_spec
        return spec.unflatten(self.flat(spec, condition))

    def flat(self, spec: TargetSpec | None = None, condition: torch.Tensor | None = None) -> torch.Tensor:
        """All weights of ``spec`` as one ``(num_weights,)`` or ``(batch, num_weights)`` tensor."""
        spec = spec or self.default_spec
        return self.rescale(spec, self.head.emit(self, spec, self.project_condition(condition)))

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
        conds = [self.project_condition(c) for _, c in distinct]
        flats = self.head.emit_many(self, [spec for spec, _ in distinct], conds)
        if flats is None:
            flats = [self.flat(spec, condition) for spec, condition in distinct]
        generated = [spec.unflatten(flat) for (spec, _), flat in zip(distinct, flats)]
        return [generated[slots[(spec.key(), None if c is None else id(c))]] for spec, c in zip(specs, conditions)]

    def random_values(self, spec: TargetSpec, per_tensor: int, condition: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Generated values at up to ``per_tensor`` random positions of each tensor (flattened).

        The scalar head evaluates only those positions, which makes statistics matching cheap
        for large targets; the other heads generate everything and subsample.
        """
        picks = [torch.randperm(p.numel, generator=generator)[:per_tensor] if p.numel > per_tensor
                 else torch.arange(p.numel) for p in spec.params.values()]
        return dict(zip(spec.params, self.head.values_at(self, spec, picks, condition)))

    def random_grid(self, spec: TargetSpec, rows: int, cols: int, condition: torch.Tensor | None = None,
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
        values = dict(zip(spec.params, self.head.values_at(self, spec, picks, condition)))
        return {name: values[name].unflatten(-1, grid) for name, grid in grids.items()}

    # ------------------------------------------------------------------ what heads use

    @property
    def device(self) -> torch.device:
        """Where the descriptor path's tensors live."""
        return self.context_in.weight.device

    def project_condition(self, condition: torch.Tensor | None) -> torch.Tensor | None:
        """The condition projected to the trunk width ``(batch?, W)``, checked; ``None`` without one."""
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

    def rescale(self, spec: TargetSpec, out: torch.Tensor) -> torch.Tensor:
        """``init_mean + init_scale · out`` per weight (with ``scale_by_init``)."""
        if not self.scale_by_init:
            return out

        def build():
            # Built outside inference mode (and cloned): ``scale`` is saved for backward.
            with torch.inference_mode(False):
                return tuple(v.to(out.device, out.dtype, copy=True) for v in spec.init_vectors())

        mean, scale = self.plans.get(spec, ("init_vectors", str(out.device), out.dtype), build)
        return torch.addcmul(mean, scale, out)

    def descriptors(self, spec: TargetSpec) -> dict:
        """Raw descriptor tensors of ``spec`` on this generator's device, built once per device.

        Each axis field keeps its distinct values (``unique``) and, per slot, indices into them
        (``inverse``): the Fourier features and their projection run once per distinct value."""
        device = self.device

        def build():
            # Built outside inference mode: these index tensors are saved for backward later.
            with torch.inference_mode(False):
                return self._build_descriptors(spec, device)

        return self.plans.get(spec, ("descriptors", str(device)), build)

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

    def fourier(self, spec: TargetSpec) -> dict:
        """Normalised descriptors and their Fourier features for ``spec``: constant for fixed
        buffers, so computed once per spec and kept in :attr:`plans`.

        The entry is rebuilt whenever a buffer it depends on is replaced (``.to(device/dtype)``,
        ``functional_call``) or modified in place (``load_state_dict``): it keeps the buffers it
        was built from and their version counters. Features are built without autograd, so the
        cache holds no graph."""
        sources = [self.normalizer.lo, self.normalizer.hi, self.normalizer.multiplier, self.context_features.B,
                   *(self.axis_features[f].B for f in AXIS_FIELDS)]
        if self.shared_trunk:
            sources.append(self.member_features.B)
        entry = self.plans.lookup(spec, "fourier")
        if entry is None or any(a is not b or a._version != v for (a, v), b in zip(entry["sources"], sources)):
            desc = self.descriptors(spec)
            with torch.inference_mode(False), torch.no_grad():
                context = self.normalizer(desc["context"], CONTEXT_FIELDS)
                entry = {
                    "sources": [(b, b._version) for b in sources],
                    "context": self.context_features(context[:, field_columns(LOCAL_FIELDS)]
                                                     if self.shared_trunk else context),
                    "member": (self.member_features(context[:, field_columns(MEMBER_FIELDS)])
                               if self.shared_trunk else None),
                    "axes": {f: self.axis_features[f](self.normalizer(u.unsqueeze(-1), (f,)))
                             for f, u in desc["unique"].items()},
                    "tokens": (self.normalizer(desc["tokens"], TOKEN_FIELDS)  # merged: per source
                               if self.structure is not None and not isinstance(spec, MergedSpec) else None),
                }
            self.plans.put(spec, "fourier", entry)
        return entry

    def context_input(self, spec: TargetSpec, cond: torch.Tensor | None) -> torch.Tensor:
        """Per-tensor trunk input from the context fields: ``(batch?, T, W)`` (``(T, W)`` from the
        local fields alone with ``shared_trunk``)."""
        base = self.context_in(self.fourier(spec)["context"])
        return base if self.shared_trunk else self._add_target(spec, cond, base)

    def modulation(self, spec: TargetSpec, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``shared_trunk``: per-tensor ``(γ, β)``, each ``(batch?, T, W)``, from the fields that
        differ between targets, the structure code and the condition."""
        member = self._add_target(spec, cond, self.member_in(self.fourier(spec)["member"]))
        gamma, beta = self.film(F.gelu(member)).chunk(2, dim=-1)
        return gamma, beta

    def _add_target(self, spec: TargetSpec, cond: torch.Tensor | None, base: torch.Tensor) -> torch.Tensor:
        """``base`` ``(T, W)`` plus each tensor's target structure code and condition."""
        if self.structure is not None:
            if isinstance(spec, MergedSpec):  # each target's own layers, broadcast to its tensors
                codes = self.structure([self.fourier(s)["tokens"] for s in spec.sources])
                counts = torch.tensor([len(s.params) for s in spec.sources], device=base.device)
                base = base + codes.repeat_interleave(counts, dim=0)
            else:
                base = base + self.structure(self.fourier(spec)["tokens"])
        if cond is not None:  # a merged spec's condition is already per tensor
            base = base + (cond if isinstance(spec, MergedSpec) else cond.unsqueeze(-2))
        return base

    def run_chunks(self, build, total: int, head) -> torch.Tensor:
        """Run ``head(trunk(build(start, end)))`` over ``[0, total)`` in chunks of ``chunk_size``.
        A single chunk is returned as it is: concatenating one piece would copy it (and its
        gradient), a full pass over every trunk row."""
        size = self.chunk_size or max(total, 1)
        outs = []
        for start in range(0, total, size):
            end = min(start + size, total)
            fn = lambda s=start, e=end: head(self.trunk(build(s, e)))
            if self.checkpoint and torch.is_grad_enabled():
                outs.append(activation_checkpoint(fn, use_reentrant=False))
            else:
                outs.append(fn())
        if len(outs) <= 1:
            return outs[0] if outs else None
        return torch.cat(outs, dim=-2)

    def extra_repr(self) -> str:
        return (f"head={self.head.name!r}, width={self.width}, condition_size={self.condition_size}"
                + self.head.extra_repr())
