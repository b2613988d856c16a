"""What a target *is* for generation: descriptor fields, :class:`TargetSpec` and the layer registry.

A leaf module (it knows no layer and imports nothing of hyperkit, like timm's ``_registry.py``):
the describers of torch's layers (:mod:`hyperkit.describers`) and of the generator's own pieces
(:mod:`hyperkit.blocks`) register themselves here when their module is imported, and
:func:`hyperkit.describe` (:mod:`hyperkit.descriptors`) looks them up.

Every parameter tensor gets
  * constant *context* fields — which layer, its depth, layer type, parameter role, the layer's
    structure (sizes, kernel, heads), the model's global structure and the task, and
  * *axis* fields — for each tensor dimension, which index field(s) it maps to (row, column,
    kernel position, attention head, q/k/v block).

The layout extends UHN's ten index fields (Chauhan et al., "Universal Hypernetworks for Arbitrary
Models"): a dimension may map to several fields through ``(i // divisor) % modulus`` (so an
attention projection's rows give block, head and row-in-head), and the categorical fields are
stable hashes of names, so ids never depend on import or registration order.
"""

from __future__ import annotations

import functools
import importlib
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

# Fields constant over one parameter tensor (a single joint Fourier group).
INDEX_CONTEXT_FIELDS = ("layer", "depth", "layer_type", "role")
LAYER_FIELDS = ("in_size", "out_size", "kernel0", "kernel1", "heads", "numel")
GLOBAL_FIELDS = ("num_layers", "num_params", "max_width")
TASK_FIELDS = ("task", "num_classes", "input_size", "output_size")
CONTEXT_FIELDS = INDEX_CONTEXT_FIELDS + LAYER_FIELDS + GLOBAL_FIELDS + TASK_FIELDS
# Fields that vary inside a tensor, one per index position (each its own Fourier group).
AXIS_FIELDS = ("block", "head", "row", "col", "k0", "k1")
INDEX_FIELDS = INDEX_CONTEXT_FIELDS + AXIS_FIELDS
# Sizes span orders of magnitude: they are normalised on a log scale.
LOG_FIELDS = frozenset({"in_size", "out_size", "numel", "num_params", "max_width", "input_size"})
# Hashed categorical ids live in a fixed range, independent of the specs a generator is built on.
HASH_BUCKETS = 997
FIXED_RANGES = {"layer_type": (0.0, HASH_BUCKETS - 1.0), "role": (0.0, HASH_BUCKETS - 1.0),
                "depth": (0.0, 1.0)}
# Scale for tensors whose default init is constant (LayerNorm weight, zero biases).
CONSTANT_INIT_SCALE = 0.02


def stable_id(name: str) -> int:
    """A process-independent integer id for a categorical name (layer type, parameter role)."""
    return zlib.crc32(name.encode()) % HASH_BUCKETS


@dataclass(frozen=True)
class AxisMap:
    """One index field read off a tensor dimension: ``value = (i // divisor) % modulus``, or, when
    ``centered``, the offset from the middle of the dimension, ``i - (size - 1) / 2`` (kernel taps:
    the centre tap of a 3×3 and of a 5×5 kernel get the same descriptor)."""

    field: str
    divisor: int = 1
    modulus: int = 0  # 0: no wrap-around
    centered: bool = False

    def values(self, size: int) -> torch.Tensor:
        if self.centered:
            return torch.arange(size) - (size - 1) / 2
        v = torch.arange(size) // self.divisor
        return v % self.modulus if self.modulus else v


def as_axes(item) -> tuple[AxisMap, ...]:
    if item is None:
        return ()
    if isinstance(item, str):
        item = (AxisMap(item),)
    elif isinstance(item, AxisMap):
        item = (item,)
    for a in item:
        if a.field not in AXIS_FIELDS:
            raise ValueError(f"unknown axis field {a.field!r}; valid fields: {AXIS_FIELDS}")
    return tuple(item)


@dataclass(frozen=True)
class ParamInfo:
    """What a layer describer says about one of its parameters.

    Args:
        role: the parameter's role ("weight", "bias", "norm_scale", ...).
        axes: per tensor dimension, a field name, an :class:`AxisMap`, a tuple of them, or ``None``.
        mean, std: statistics of the default initialisation; ``std=None`` measures them by
            calling the layer's ``reset_parameters()`` on a copy.
    """

    role: str
    axes: tuple = ()
    mean: float = 0.0
    std: float | None = None


@dataclass(frozen=True)
class LayerDescription:
    """A describer's answer: the layer's structure fields and its parameters by relative name."""

    structure: Mapping[str, float]
    params: Mapping[str, ParamInfo]


@dataclass(frozen=True)
class ParamSpec:
    """Descriptor of one generated tensor.

    ``axes[d]`` lists the index fields that dimension ``d`` maps to; ``scale`` is the default-init
    std, or :data:`CONSTANT_INIT_SCALE` where that init is constant; ``aliases`` are tied names.
    """

    name: str
    shape: tuple[int, ...]
    layer: int
    layer_type: str
    role: str
    axes: tuple[tuple[AxisMap, ...], ...]
    init_mean: float
    init_std: float
    aliases: tuple[str, ...] = ()

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def scale(self) -> float:
        return self.init_std if self.init_std > 0 else CONSTANT_INIT_SCALE


@dataclass(frozen=True)
class LayerSpec:
    path: str
    type: str
    index: int
    structure: Mapping[str, float]
    params: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class TargetSpec:
    """Everything the generator needs to know about a target, keyed by parameter name.

    Build it with :func:`hyperkit.describe`. Specs are immutable descriptions: :meth:`with_task`
    returns a copy with other task fields, and what a generator derives from a spec (descriptor
    tables, plans) lives in the generator, not here.
    """

    params: Mapping[str, ParamSpec]
    layers: tuple[LayerSpec, ...]
    globals: Mapping[str, float]
    task: Mapping[str, float]
    module_class: str

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def num_weights(self) -> int:
        return sum(p.numel for p in self.params.values())

    @property
    def offsets(self) -> dict[str, int]:
        out, pos = {}, 0
        for name, p in self.params.items():
            out[name] = pos
            pos += p.numel
        return out

    def key(self) -> tuple:
        """Hashable identity of the architecture and task (equal for equal descriptors)."""
        return self._key

    @functools.cached_property
    def _key(self) -> tuple:
        # A pure function of the frozen fields, computed once: generate_many asks for every spec
        # of every step.
        return (tuple((n, p.shape, p.layer, p.layer_type, p.role, p.axes) for n, p in self.params.items()),
                tuple(sorted(self.globals.items())), tuple(sorted(self.task.items())))

    def with_task(self, **task: float) -> TargetSpec:
        return replace(self, task=task_fields(task))

    def context(self, name: str) -> list[float]:
        """Raw (unnormalised) context fields of tensor ``name``, ordered as CONTEXT_FIELDS."""
        p = self.params[name]
        layer = self.layers[p.layer]
        depth = p.layer / max(len(self.layers) - 1, 1)
        values = {"layer": p.layer, "depth": depth, "layer_type": stable_id(p.layer_type),
                  "role": stable_id(p.role), **layer.structure, **self.globals, **self.task}
        return [float(values.get(f, 0.0)) for f in CONTEXT_FIELDS]

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat ``(..., num_weights)`` tensor into named views of each parameter's shape."""
        if flat.shape[-1] != self.num_weights:
            raise ValueError(f"flat tensor has {flat.shape[-1]} values; this target has {self.num_weights}")
        lead = flat.shape[:-1]
        out = {}
        for (name, p), start in zip(self.params.items(), self.offsets.values()):
            out[name] = flat[..., start:start + p.numel].view(*lead, *p.shape)
        return out

    def init_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat per-weight default-init mean and scale, each ``(num_weights,)``."""
        mean = torch.cat([torch.full((p.numel,), p.init_mean) for p in self.params.values()])
        scale = torch.cat([torch.full((p.numel,), p.scale) for p in self.params.values()])
        return mean, scale

    def summary(self) -> str:
        """A table of the tensors: name, shape, layer, type, role, axis fields, init mean/std."""
        rows = [("name", "shape", "layer", "type", "role", "axes", "init mean", "init std")]
        for n, p in self.params.items():
            axes = " × ".join("+".join(a.field for a in ax) or "-" for ax in p.axes) or "-"
            rows.append((n, str(tuple(p.shape)), str(p.layer), p.layer_type, p.role, axes,
                         f"{p.init_mean:.3g}", f"{p.init_std:.3g}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines.append(f"{len(self.params)} tensors, {self.num_weights:,} weights, "
                     f"{len(self.layers)} layers ({self.module_class})")
        return "\n".join(lines)


def task_fields(task: Mapping[str, float] | None) -> dict[str, float]:
    """Checked task fields as floats (an unknown field raises, naming the valid ones)."""
    task = dict(task or {})
    unknown = set(task) - set(TASK_FIELDS)
    if unknown:
        raise ValueError(f"unknown task field(s) {sorted(unknown)}; valid task fields: {TASK_FIELDS}")
    return {k: float(v) for k, v in task.items()}



# ---------------------------------------------------------------------------------------------
# The layer registry

Describer = Callable[[nn.Module], LayerDescription]
_DESCRIBERS: dict[type, tuple[str, Describer]] = {}
# Describers registered by import path, per top-level package, resolved when describe() first meets
# a layer from that package (see register_layer_lazily).
_LAZY_DESCRIBERS: dict[str, list[tuple[str, str, Describer]]] = {}


def register_layer(layer_class: type, name: str | None = None):
    """Register a describer for a layer class (decorator).

    The describer receives the layer and returns a :class:`LayerDescription` covering every
    parameter under it (children included). Subclasses use their closest registered base.

    Example:
        >>> import hyperkit
        >>> class Scale(nn.Module):
        ...     def __init__(self, n):
        ...         super().__init__()
        ...         self.gain = nn.Parameter(torch.ones(n))
        ...     def forward(self, x):
        ...         return x * self.gain
        >>> @register_layer(Scale)
        ... def describe_scale(m):
        ...     return LayerDescription({"in_size": m.gain.numel(), "out_size": m.gain.numel()},
        ...                             {"gain": ParamInfo("norm_scale", ("row",), mean=1.0, std=0.0)})
        >>> hyperkit.describe(nn.Sequential(Scale(3))).params["0.gain"].role
        'norm_scale'
    """

    def decorator(fn: Describer) -> Describer:
        _DESCRIBERS[layer_class] = (name or layer_class.__name__.lower(), fn)
        return fn

    return decorator


def register_layer_lazily(import_path: str, describer: Describer, name: str | None = None) -> None:
    """Register ``describer`` for the layer class at ``import_path`` without importing it now.

    For layers of optional, slow-to-import packages: the class is imported, and registered as with
    :func:`register_layer`, the first time :func:`hyperkit.describe` meets a layer whose class
    comes from the same top-level package (which is then already imported). Where the package is
    not installed the registration is dropped: no layer of it can appear in a target anyway.
    hyperkit registers torch_geometric's ``Linear``, ``GCNConv`` and ``GATConv`` this way —
    importing torch_geometric costs seconds (it loads ``torch._dynamo``), and a target without
    graph layers has no use for it.

    Args:
        import_path: ``"package.module.ClassName"``, e.g. ``"torch_geometric.nn.GCNConv"``.
        describer: as for :func:`register_layer`.
        name: the layer type's name (default: the class name, lower case).

    Example (how :mod:`hyperkit.describers` registers GCNConv)::

        register_layer_lazily("torch_geometric.nn.GCNConv", describe_gcn, "gcn")
    """
    module = import_path.rpartition(".")[0]
    if not module:
        raise ValueError(f"register_layer_lazily needs a dotted path 'package.module.Class', got {import_path!r}")
    _LAZY_DESCRIBERS.setdefault(module.partition(".")[0], []).append((import_path, name, describer))


def _resolve_lazy(package: str) -> None:
    for import_path, name, describer in _LAZY_DESCRIBERS.pop(package, ()):
        module, _, attribute = import_path.rpartition(".")
        try:
            layer_class = getattr(importlib.import_module(module), attribute)
        except ImportError:  # the optional package is absent: none of its layers can be met
            continue
        register_layer(layer_class, name)(describer)


def find_describer(cls: type) -> tuple[str, Describer] | None:
    """The (layer type name, describer) registered for ``cls`` or its closest registered base."""
    for base in cls.__mro__:
        if _LAZY_DESCRIBERS:
            _resolve_lazy(base.__module__.partition(".")[0])
    for base in cls.__mro__:
        if base in _DESCRIBERS:
            return _DESCRIBERS[base]
    return None


def check_params(spec_or_module, params: Mapping[str, torch.Tensor], batch_dims: int = 0) -> None:
    """Raise a clear error when ``params`` do not fit the target (names and shapes).

    Against a spec every parameter must be there; against a module, a parameter that ``params``
    lacks is the module's own (partial generation, ``describe(module, include=...)``), but one the
    module does not have, or of another shape, is an error."""
    if isinstance(spec_or_module, TargetSpec):
        shapes = {n: p.shape for n, p in spec_or_module.params.items()}
        missing = [n for n in shapes if n not in params]
    else:
        shapes = {n: tuple(p.shape) for n, p in spec_or_module.named_parameters()}
        missing = []
    unexpected = [n for n in params if n not in shapes]
    wrong = [f"{n}: expected {shapes[n]}, got {tuple(params[n].shape[batch_dims:])}"
             for n in shapes if n in params and tuple(params[n].shape[batch_dims:]) != tuple(shapes[n])]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append("wrong shapes " + "; ".join(wrong[:5]))
        raise ValueError("these parameters were not generated for this target: " + ", ".join(parts)
                         + ". Generate them from describe(target) of the same architecture.")


def sequence_of(specs: TargetSpec | Sequence[TargetSpec]) -> list[TargetSpec]:
    return [specs] if isinstance(specs, TargetSpec) else list(specs)
