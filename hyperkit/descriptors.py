"""Describe any ``nn.Module`` as a :class:`TargetSpec`: one deterministic descriptor per weight.

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

import copy
import math
import zlib
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

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


def _as_axis(item) -> tuple[AxisMap, ...]:
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

    Build it with :func:`describe`. Specs are immutable; :meth:`with_task` returns a copy with other
    task fields.
    """

    params: Mapping[str, ParamSpec]
    layers: tuple[LayerSpec, ...]
    globals: Mapping[str, float]
    task: Mapping[str, float]
    module_class: str
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

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
        if "key" not in self._cache:
            self._cache["key"] = (
                tuple((n, p.shape, p.layer, p.layer_type, p.role, p.axes) for n, p in self.params.items()),
                tuple(sorted(self.globals.items())), tuple(sorted(self.task.items())),
            )
        return self._cache["key"]

    def with_task(self, **task: float) -> "TargetSpec":
        return replace(self, task=_task_fields(task), _cache={})

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
        if "init" not in self._cache:
            mean = torch.cat([torch.full((p.numel,), p.init_mean) for p in self.params.values()])
            scale = torch.cat([torch.full((p.numel,), p.scale) for p in self.params.values()])
            self._cache["init"] = (mean, scale)
        return self._cache["init"]

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


# ---------------------------------------------------------------------------------------------
# Layer describers

Describer = Callable[[nn.Module], LayerDescription]
_DESCRIBERS: dict[type, tuple[str, Describer]] = {}
# Describers for the layers of optional libraries, keyed by the library's top-level package and
# registered the first time describe() meets a layer from it: importing torch_geometric costs
# seconds (it loads torch._dynamo), and a target without graph layers has no use for it.
_DEFERRED_DESCRIBERS: dict[str, Callable[[], None]] = {}


def register_layer(layer_class: type, name: str | None = None):
    """Register a describer for a layer class (decorator).

    The describer receives the layer and returns a :class:`LayerDescription` covering every
    parameter under it (children included). Subclasses use their closest registered base.

    Example:
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
        >>> describe(nn.Sequential(Scale(3))).params["0.gain"].role
        'norm_scale'
    """

    def decorator(fn: Describer) -> Describer:
        _DESCRIBERS[layer_class] = (name or layer_class.__name__.lower(), fn)
        return fn

    return decorator


def _find_describer(cls: type):
    for base in cls.__mro__:
        register = _DEFERRED_DESCRIBERS.pop(base.__module__.partition(".")[0], None)
        if register is not None:
            register()
    for base in cls.__mro__:
        if base in _DESCRIBERS:
            return _DESCRIBERS[base]
    return None


def _task_fields(task: Mapping[str, float] | None) -> dict[str, float]:
    task = dict(task or {})
    unknown = set(task) - set(TASK_FIELDS)
    if unknown:
        raise ValueError(f"unknown task field(s) {sorted(unknown)}; valid task fields: {TASK_FIELDS}")
    return {k: float(v) for k, v in task.items()}


def describe(module: nn.Module, task: Mapping[str, float] | None = None) -> TargetSpec:
    """Describe every parameter of ``module`` for generation.

    Works for any module built from layers with a registered describer (see
    :func:`register_layer`), registered as a target or not. Tied parameters appear once, under the
    name ``named_parameters()`` gives them, with the other names as ``aliases``.

    Args:
        module: the target network.
        task: task fields (``task``, ``num_classes``, ``input_size``, ``output_size``).

    Returns:
        a :class:`TargetSpec`, keyed by parameter name in ``named_parameters()`` order.

    Example:
        >>> spec = describe(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
        >>> spec.num_weights, spec.params["0.weight"].shape
        (58, (8, 4))
    """
    import hyperkit.layers  # noqa: F401  (registers the built-in describers)

    _check_module(module)
    layers, infos = _walk(module)
    names = dict(module.named_parameters())  # de-duplicated: tied tensors under their first name
    first_name = {id(p): n for n, p in names.items()}
    aliases: dict[str, list[str]] = {}
    for n, p in module.named_parameters(remove_duplicate=False):
        if first_name[id(p)] != n:
            aliases.setdefault(first_name[id(p)], []).append(n)

    params = {}
    for name, tensor in names.items():
        layer_index, layer_type, info, layer_module, rel = infos[name]
        mean, std = (info.mean, info.std) if info.std is not None else _measure_init(layer_module, rel)
        axes = tuple(_as_axis(a) for a in info.axes) if info.axes else tuple(() for _ in tensor.shape)
        if len(axes) != tensor.dim():
            raise ValueError(f"describer for {layer_type!r} gives {len(axes)} axes for {name!r} of "
                             f"shape {tuple(tensor.shape)}; give one entry per dimension")
        params[name] = ParamSpec(name, tuple(tensor.shape), layer_index, layer_type, info.role, axes,
                                 float(mean), float(std), tuple(aliases.get(name, ())))

    widths = [v for l in layers for k, v in l.structure.items() if k in ("in_size", "out_size")]
    globals_ = {"num_layers": float(len(layers)), "num_params": float(sum(p.numel for p in params.values())),
                "max_width": float(max(widths, default=0))}
    return TargetSpec(params, tuple(layers), globals_, _task_fields(task), type(module).__name__)


def _check_module(module: nn.Module) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"describe() needs an nn.Module, got {type(module).__name__}")
    for path, m in module.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            raise ValueError(
                f"{path or 'the module'} ({type(m).__name__}) keeps running statistics, which a "
                "generated target cannot hold; build it with track_running_stats=False")
    params = list(module.named_parameters())
    if not params:
        raise ValueError(f"{type(module).__name__} has no parameters: there is nothing to generate")
    for n, p in params:
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise ValueError(f"parameter {n!r} is lazy (uninitialised); run one forward pass or give "
                             "the layer its input size before describing it")


def _walk(module: nn.Module):
    """Find the described layers in module order; map each parameter name to its layer."""
    layers: list[LayerSpec] = []
    infos: dict[str, tuple] = {}
    seen: set[int] = set()

    def visit(m: nn.Module, path: str) -> None:
        found = _find_describer(type(m))
        if found is not None:
            _add_layer(m, path, found, layers, infos, seen)
            return
        own = [n for n, p in m._parameters.items() if p is not None]
        if own:
            raise TypeError(
                f"no describer for layer {path or '<root>'} ({type(m).__module__}.{type(m).__name__}), "
                f"which holds parameter(s) {own}; register one with "
                f"@hyperkit.register_layer({type(m).__name__}) (see docs/targets.md)")
        for name, child in m.named_children():
            visit(child, f"{path}.{name}" if path else name)

    visit(module, "")
    return layers, infos


def _add_layer(m, path, found, layers, infos, seen) -> None:
    type_name, describer = found
    desc = describer(m)
    own = {n: p for n, p in m.named_parameters()}
    missing = set(own) - set(desc.params)
    if missing:
        raise TypeError(f"the {type_name!r} describer does not cover parameter(s) {sorted(missing)} of "
                        f"{path or '<root>'} ({type(m).__name__}); extend it with register_layer")
    names = []
    for rel, info in desc.params.items():
        if rel not in own or id(own[rel]) in seen:
            continue  # optional parameter absent (bias=False), or tied to an earlier layer
        seen.add(id(own[rel]))
        full = f"{path}.{rel}" if path else rel
        infos[full] = (len(layers), type_name, info, m, rel)
        names.append(full)
    if names:
        structure = {k: float(v) for k, v in desc.structure.items()}
        structure["numel"] = float(sum(own[r].numel() for r in desc.params if r in own))
        layers.append(LayerSpec(path, type_name, len(layers), structure, tuple(names)))


def _measure_init(layer: nn.Module, rel: str, samples: int = 20000, max_resets: int = 64) -> tuple[float, float]:
    """Default-init mean/std of ``layer``'s parameter ``rel``, measured with a fixed seed."""
    if not hasattr(layer, "reset_parameters"):
        raise TypeError(f"{type(layer).__name__} has no reset_parameters(); give mean and std in its "
                        "describer's ParamInfo")
    clone = copy.deepcopy(layer)
    values = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        while sum(v.numel() for v in values) < samples and len(values) < max_resets:
            clone.reset_parameters()
            values.append(clone.get_parameter(rel).detach().flatten().clone())
    flat = torch.cat(values).double()
    return flat.mean().item(), flat.std(unbiased=False).item()


def check_params(spec_or_module, params: Mapping[str, torch.Tensor], batch_dims: int = 0) -> None:
    """Raise a clear error when ``params`` do not fit the target (names and shapes)."""
    if isinstance(spec_or_module, TargetSpec):
        shapes = {n: p.shape for n, p in spec_or_module.params.items()}
    else:
        shapes = {n: tuple(p.shape) for n, p in spec_or_module.named_parameters()}
    missing = [n for n in shapes if n not in params]
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
