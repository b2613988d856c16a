"""Binding generated weights to a target: functional calls, batched calls, standalone modules."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
import torch.nn as nn
from torch.func import functional_call, vmap

from hyperkit.descriptors import check_params


def call(module: nn.Module, params: Mapping[str, torch.Tensor], *args: Any, **kwargs: Any):
    """Run ``module`` with generated ``params`` instead of its own (``torch.func.functional_call``).

    The module is not modified; gradients flow from the output into ``params`` (and on into the
    generator). Buffers stay the module's own.

    Shapes:
        params: ``{name: shape}`` as in ``module.named_parameters()``.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> out = call(net, {"weight": torch.zeros(2, 3), "bias": torch.ones(2)}, torch.randn(4, 3))
        >>> out.tolist()[0]
        [1.0, 1.0]
    """
    check_params(module, params)
    return functional_call(module, dict(params), args, kwargs)


def vcall(module: nn.Module, params: Mapping[str, torch.Tensor], *args: Any, in_dims: Any = None,
          **kwargs: Any):
    """Run ``module`` once per generated model in a batch of ``params`` with ``torch.func.vmap``.

    Args:
        module: the target.
        params: ``{name: (batch, *shape)}``, e.g. from a generator called with a batch of conditions.
        *args: inputs, shared by every model unless ``in_dims`` says otherwise.
        in_dims: vmap ``in_dims`` for ``args`` (``None``: shared; ``0``: one input per model).

    Shapes:
        output ``(batch, *out_shape)``.

    Raises:
        ValueError: if the batch sizes of ``params`` differ or names/shapes do not fit ``module``.
    """
    check_params(module, params, batch_dims=1)
    sizes = {v.shape[0] for v in params.values()}
    if len(sizes) != 1:
        raise ValueError(f"all generated tensors need the same batch size; got sizes {sorted(sizes)}")
    arg_dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)

    def one(p, *a):
        return functional_call(module, p, a, kwargs)

    return vmap(one, in_dims=(0, *arg_dims), randomness="different")(dict(params), *args)


def materialize(module: nn.Module, params: Mapping[str, torch.Tensor]) -> nn.Module:
    """A standalone copy of ``module`` holding the generated weights (detached) as its parameters.

    Use it to save, export or fine-tune one generated network. Tied parameters stay tied.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> new = materialize(net, {"weight": torch.zeros(2, 3), "bias": torch.ones(2)})
        >>> new.bias.tolist(), net is new
        ([1.0, 1.0], False)
    """
    shapes = {n: tuple(p.shape) for n, p in module.named_parameters()}
    if any(v.dim() > 0 and tuple(v.shape[1:]) == shapes[k] for k, v in params.items() if k in shapes):
        raise ValueError("params carry a batch dimension; materialize one model at a time, "
                         "e.g. materialize(module, {k: v[i] for k, v in params.items()})")
    check_params(module, params)
    clone = copy.deepcopy(module)
    with torch.no_grad():
        for name, value in params.items():
            clone.get_parameter(name).copy_(value.detach())
    return clone
