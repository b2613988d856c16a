"""What a generator derives from the targets it generates for, built on first use and kept by the
generator (never in the immutable :class:`~hyperkit.spec.TargetSpec`)."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from hyperkit.spec import TargetSpec


@dataclasses.dataclass(frozen=True, eq=False)
class MergedSpec(TargetSpec):
    """Several targets seen as one (their tensors side by side), so that the low-rank head batches
    them in one pass: one descriptor table, one trunk pass, one product per shape group. Each
    tensor keeps the context (layer index, depth, global and task fields) of its own target.

    ``sources`` are the targets; ``origin`` maps each merged name (``"i/name"``) to its target
    and own name.
    """

    sources: tuple[TargetSpec, ...] = ()
    origin: dict = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, specs: Sequence[TargetSpec]) -> MergedSpec:
        params, layers, origin = {}, [], {}
        for i, spec in enumerate(specs):
            offset = len(layers)
            layers += [dataclasses.replace(l, index=l.index + offset) for l in spec.layers]
            for name, p in spec.params.items():
                params[f"{i}/{name}"] = dataclasses.replace(p, layer=p.layer + offset)
                origin[f"{i}/{name}"] = (spec, name)
        return cls(params, tuple(layers), {}, {}, "merged", sources=tuple(specs), origin=origin)

    def context(self, name: str) -> list[float]:
        spec, own = self.origin[name]
        return spec.context(own)


class GenerationPlans:
    """A generator's derived data per target — descriptor tables, Fourier features, a head's index
    plan, init vectors — and its merged specs (:meth:`Generator.generate_many`).

    Entries are kept per spec object, weakly: a spec nobody else holds takes its entries with it.
    They are pure functions of the spec, the generator's options, device and buffers, so a copy of
    the generator (``copy.deepcopy``, pickling) starts with none and rebuilds them on first use.
    """

    MAX_MERGED = 64  # sampled architectures: keep the merged specs bounded

    def __init__(self):
        self._entries: weakref.WeakKeyDictionary[TargetSpec, dict] = weakref.WeakKeyDictionary()
        self._merged: dict[tuple, MergedSpec] = {}

    def get(self, spec: TargetSpec, key: Any, build: Callable[[], Any]) -> Any:
        """The entry ``key`` of ``spec``, built by ``build()`` the first time it is asked for."""
        entries = self._entries.setdefault(spec, {})
        if key not in entries:
            entries[key] = build()
        return entries[key]

    def lookup(self, spec: TargetSpec, key: Any) -> Any:
        """The entry ``key`` of ``spec``, or ``None``."""
        return self._entries.get(spec, {}).get(key)

    def put(self, spec: TargetSpec, key: Any, value: Any) -> None:
        self._entries.setdefault(spec, {})[key] = value

    def merged(self, specs: Sequence[TargetSpec]) -> MergedSpec:
        """The merged spec of ``specs`` (kept, so its descriptor tables and plan are built once)."""
        key = tuple(id(s) for s in specs)
        entry = self._merged.get(key)
        if entry is None or any(a is not b for a, b in zip(entry.sources, specs)):
            if len(self._merged) >= self.MAX_MERGED:
                self._merged.clear()
            entry = self._merged[key] = MergedSpec.of(specs)
        return entry

    def __deepcopy__(self, memo) -> GenerationPlans:
        return GenerationPlans()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()
