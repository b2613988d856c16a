"""The low-rank head: per-row factors ``U`` and per-column factors ``V`` from row and column
descriptors, ``W = U Vᵀ / √r + a 1ᵀ / √n + 1 bᵀ / √m``."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from hyperkit.blocks import LearnedVectors
from hyperkit.encoding import LOCAL_FIELDS, field_columns
from hyperkit.heads.base import Head
from hyperkit.spec import TargetSpec


class LowRankHead(Head):
    """Per-row factors ``U`` and per-column factors ``V`` from row and column descriptors, centred
    over the rows (columns): ``W = U Vᵀ / √r + a 1ᵀ / √n + 1 bᵀ / √m`` with per-row offsets ``a``
    and per-column offsets ``b`` (``m × n`` matrix, dimensions after the first flattened) from the
    same trunk outputs. 0-d and 1-d tensors get one value per row from ``out``. Cost grows with
    rows + columns, not rows × columns.

    Args:
        rank: rank ``r`` of ``U Vᵀ``.
        shared_trunk: the trunk sees only the local descriptor fields; the others modulate its
            output (see :class:`~hyperkit.generator.Generator`).

    Shapes:
        trunk outputs ``(batch?, rows + columns, width)`` → ``(batch?, num_weights)``.
    """

    name = "lowrank"

    def __init__(self, rank: int = 8, shared_trunk: bool = False):
        self.rank, self.shared_trunk = rank, shared_trunk

    def layers(self, width: int, spec: TargetSpec) -> dict[str, nn.Module]:
        layers = {"side": LearnedVectors(2, width, std=0.02),  # row side vs column side
                  # Each emits a factor row (rank values) and an offset (last value, starting at zero).
                  "out_u": nn.Linear(width, self.rank + 1), "out_v": nn.Linear(width, self.rank + 1)}
        with torch.no_grad():
            for layer in (layers["out_u"], layers["out_v"]):
                layer.weight[-1].zero_()
                layer.bias[-1].zero_()
        layers["out"] = nn.Linear(width, 1)  # 0-d and 1-d tensors: one value per row
        return layers

    def emit_many(self, generator, specs: Sequence[TargetSpec], conds) -> list[torch.Tensor] | None:
        """The targets as one merged target — one descriptor table, one trunk pass over all their
        rows and columns, one batched product per matrix shape — where their conditions have the
        same batch shape; each tensor gets its own target's condition."""
        if len({None if c is None else tuple(c.shape) for c in conds}) != 1:
            return None
        merged = generator.plans.merged(specs)
        cond = None
        if conds[0] is not None:
            counts = torch.tensor([len(spec.params) for spec in specs], device=conds[0].device)
            cond = torch.stack(list(conds), dim=-2).repeat_interleave(counts, dim=-2)
        flat = generator.rescale(merged, self.emit(generator, merged, cond))
        return list(flat.split([spec.num_weights for spec in specs], dim=-1))

    def plan(self, generator, spec: TargetSpec) -> dict:
        """Index tensors that batch the head over all tensors of ``spec``, built once per spec and
        device and kept in the generator's :class:`~hyperkit.plans.GenerationPlans`.

        Trunk inputs are, in this order, the rows of the 0-d and 1-d tensors (a 0-d tensor has
        one), the rows of the matrices and their columns (all dimensions after the first,
        flattened); matrices of equal shape are adjacent, so one batched ``u @ vᵀ`` serves them.
        Each input is ``base[t] + side[s] + Π_d Σ_k table[index[d][n, k]]`` where ``table`` holds
        the projected distinct values of every axis field followed by a zero row (padding of the
        sum) and a one row (padding of the product). ``order`` puts the outputs in ``spec`` order.
        """
        device = generator.device

        def build() -> dict:
            with torch.inference_mode(False):
                desc = generator.descriptors(spec)
                plan = _build_plan(spec, desc, device)
                if self.shared_trunk:
                    plan["shared"] = _shared_rows(desc, plan)
                return plan

        return generator.plans.get(spec, ("lowrank_plan", str(device)), build)

    def trunk_inputs(self, generator, spec: TargetSpec, cond, plan: dict) -> torch.Tensor:
        """Trunk inputs of the rows ``plan`` lists (every row and column of every tensor, or their
        distinct ones), ``(batch?, rows, W)``."""
        base, width = generator.context_input(spec, cond), generator.width
        table = torch.cat([generator.axis_in[f](x) for f, x in generator.fourier(spec)["axes"].items()]
                          + [base.new_zeros(1, width), base.new_ones(1, width)])
        # A bag sum per dimension: gathering every term first made a (rows, dims, terms, W)
        # tensor, whose backward (a stack) was the slowest step for the transformer family.
        summed = [F.embedding_bag(index, table, mode="sum") for index in plan["index"]]
        side = torch.cat([generator.side.weight, generator.side.weight.new_zeros(1, width)])
        return base[..., plan["tensor"], :] + side[plan["side"]] + functools.reduce(torch.mul, summed)

    def emit(self, generator, spec: TargetSpec, cond: torch.Tensor | None) -> torch.Tensor:
        plan = self.plan(generator, spec)
        if not self.shared_trunk:
            return self.output(generator, plan, _trunk_rows(generator, self.trunk_inputs(generator, spec, cond, plan)))
        shared = plan["shared"]
        h = _trunk_rows(generator, self.trunk_inputs(generator, spec, None, shared)).index_select(-2, shared["inverse"])
        gamma, beta = generator.modulation(spec, cond)
        tensor = plan["tensor"]
        return self.output(generator, plan, torch.addcmul(beta[..., tensor, :], h, 1 + gamma[..., tensor, :]))

    def output(self, generator, plan: dict, h: torch.Tensor) -> torch.Tensor:
        """Flat weights from the trunk outputs ``h`` of one spec's rows and columns."""
        h_vectors, h_rows, h_cols = h.split(plan["splits"], dim=-2)
        lead = h.shape[:-2]
        pieces = [generator.out(h_vectors).squeeze(-1)]
        sizes = [(count, n_r, n_c) for count, n_r, n_c in plan["groups"]]
        u_all = generator.out_u(h_rows).split([count * n_r for count, n_r, _ in sizes], dim=-2)
        v_all = generator.out_v(h_cols).split([count * n_c for count, _, n_c in sizes], dim=-2)
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

    def extra_repr(self) -> str:
        return ", shared_trunk=True" if self.shared_trunk else ""


def _trunk_rows(generator, h0: torch.Tensor) -> torch.Tensor:
    """The trunk over trunk inputs ``(batch?, rows, W)``, in chunks."""
    rows = h0.shape[-2]
    build = lambda s, e: h0 if e - s == rows else h0[..., s:e, :]
    return generator.run_chunks(build, rows, lambda x: x)


def _shared_rows(desc: dict, plan: dict) -> dict:
    """``shared_trunk``: the distinct trunk rows of a plan — rows whose tensors have equal local
    context fields, on the same side, with the same axis-table indices — as a plan of their
    own (``tensor``, ``side``, ``index`` of one representative each) and ``inverse``, which
    maps every row of ``plan`` to its distinct row."""
    _, local = torch.unique(desc["context"][:, field_columns(LOCAL_FIELDS)], dim=0, return_inverse=True)
    keys = torch.cat([local.to(plan["tensor"].device)[plan["tensor"], None], plan["side"][:, None],
                      *plan["index"]], dim=1)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    rows = torch.arange(len(keys), device=keys.device)
    first = torch.full((int(inverse.max()) + 1,), len(keys), device=keys.device).scatter_reduce(
        0, inverse, rows, "amin")
    return {"tensor": plan["tensor"][first], "side": plan["side"][first],
            "index": [i[first].contiguous() for i in plan["index"]], "inverse": inverse}

def _build_plan(spec: TargetSpec, desc: dict, device) -> dict:
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
