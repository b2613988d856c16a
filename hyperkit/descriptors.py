"""Walk any ``nn.Module`` into a :class:`~hyperkit.spec.TargetSpec`: one deterministic descriptor
per weight, from the describer registered for each layer.

What a spec holds (its fields, :class:`~hyperkit.spec.ParamInfo`, the registry) is defined in
:mod:`hyperkit.spec`; those names are importable from here too. Importing this module imports
:mod:`hyperkit.describers`, which registers the describers of torch's layers.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Union

import torch
import torch.nn as nn

import hyperkit.describers  # noqa: F401  (registers the describers of torch's layers)
from hyperkit.spec import (  # noqa: F401  (re-exported: the names a describer and its users need)
    AXIS_FIELDS, CONSTANT_INIT_SCALE, CONTEXT_FIELDS, FIXED_RANGES, GLOBAL_FIELDS, HASH_BUCKETS,
    INDEX_CONTEXT_FIELDS, INDEX_FIELDS, LAYER_FIELDS, LOG_FIELDS, TASK_FIELDS, AxisMap, Describer,
    LayerDescription, LayerSpec, ParamInfo, ParamSpec, TargetSpec, as_axes, check_params, find_describer,
    register_layer, register_layer_lazily, sequence_of, stable_id, task_fields)


# What describe(include=...) accepts: a glob, globs, module type(s) or a predicate (name, parameter) -> bool.
Include = Union[str, Sequence[str], type, tuple, Callable[[str, nn.Parameter], bool], None]


def describe(module: nn.Module, task: Mapping[str, float] | None = None, include: Include = None) -> TargetSpec:
    """Describe every parameter of ``module`` for generation, or the ones ``include`` selects.

    Works for any module built from layers with a registered describer (see
    :func:`register_layer`), registered as a target or not. Tied parameters appear once, under the
    name ``named_parameters()`` gives them, with the other names as ``aliases``.

    Partial generation: with ``include``, a generator built on the spec emits only the selected
    parameters; :func:`~hyperkit.call`, :func:`~hyperkit.materialize` and
    :class:`~hyperkit.Generated` take every other parameter from the module itself (frozen, e.g.
    pretrained, or trained alongside the generator: ``Generated(..., train_own=True)``). The
    structure fields (layers, widths) still describe the whole module.

    Args:
        module: the target network.
        task: task fields (``task``, ``num_classes``, ``input_size``, ``output_size``).
        include: which parameters to describe. ``None``: all. A glob over parameter names
            (``"head.*"``) or a list of globs; a module type or tuple of types (the parameters those
            modules hold directly, e.g. ``nn.LayerNorm``); or a predicate ``(name, parameter) -> bool``.

    Returns:
        a :class:`TargetSpec`, keyed by parameter name in ``named_parameters()`` order.

    Raises:
        ValueError: ``include`` selects no parameter (the message lists the names).

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> spec = describe(net)
        >>> spec.num_weights, spec.params["0.weight"].shape
        (58, (8, 4))
        >>> list(describe(net, include="2.*").params)  # the last layer only
        ['2.weight', '2.bias']
    """
    _check_module(module)
    layers, infos = _walk(module)
    names = _selected(module, dict(module.named_parameters()), include)  # de-duplicated: tied tensors under their first name
    first_name = {id(p): n for n, p in names.items()}
    aliases: dict[str, list[str]] = {}
    for n, p in module.named_parameters(remove_duplicate=False):
        if first_name.get(id(p), n) != n:  # a parameter include left out has no entry
            aliases.setdefault(first_name[id(p)], []).append(n)

    params = {}
    for name, tensor in names.items():
        layer_index, layer_type, info, layer_module, rel = infos[name]
        mean, std = (info.mean, info.std) if info.std is not None else measure_init(layer_module, rel)
        axes = tuple(as_axes(a) for a in info.axes) if info.axes else tuple(() for _ in tensor.shape)
        if len(axes) != tensor.dim():
            raise ValueError(f"describer for {layer_type!r} gives {len(axes)} axes for {name!r} of "
                             f"shape {tuple(tensor.shape)}; give one entry per dimension")
        params[name] = ParamSpec(name, tuple(tensor.shape), layer_index, layer_type, info.role, axes,
                                 float(mean), float(std), tuple(aliases.get(name, ())))

    widths = [v for l in layers for k, v in l.structure.items() if k in ("in_size", "out_size")]
    globals_ = {"num_layers": float(len(layers)), "num_params": float(sum(p.numel for p in params.values())),
                "max_width": float(max(widths, default=0))}
    return TargetSpec(params, tuple(layers), globals_, task_fields(task), type(module).__name__)


def _selected(module: nn.Module, names: dict[str, nn.Parameter], include: Include) -> dict[str, nn.Parameter]:
    """The parameters of ``names`` that ``include`` selects (all for ``None``)."""
    if include is None:
        return names
    if isinstance(include, str) or (isinstance(include, Sequence) and all(isinstance(g, str) for g in include)):
        globs = [include] if isinstance(include, str) else list(include)
        keep = {n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)}
    elif isinstance(include, type) or (isinstance(include, tuple) and all(isinstance(t, type) for t in include)):
        keep = {f"{path}.{n}" if path else n for path, m in module.named_modules() if isinstance(m, include)
                for n, _ in m.named_parameters(recurse=False)}
    elif callable(include):
        keep = {n for n, p in names.items() if include(n, p)}
    else:
        raise TypeError(f"include must be a glob, a list of globs, a module type (or tuple of them) or a "
                        f"predicate (name, parameter) -> bool; got {include!r}")
    selected = {n: p for n, p in names.items() if n in keep}
    if not selected:
        raise ValueError(f"include={include!r} selects no parameter of {type(module).__name__}; its parameters: "
                         f"{', '.join(list(names)[:20])}{' …' if len(names) > 20 else ''}")
    return selected


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
        found = find_describer(type(m))
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


def measure_init(layer: nn.Module, rel: str, samples: int = 20000, max_resets: int = 64) -> tuple[float, float]:
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
