"""Binding generated weights to a target: functional calls, batched calls, standalone modules."""

from __future__ import annotations

import copy
import functools
from typing import Any, Mapping

import torch
import torch.nn as nn
from torch.func import functional_call, vmap

from hyperkit.spec import check_params


def call(module: nn.Module, params: Mapping[str, torch.Tensor], *args: Any, **kwargs: Any):
    """Run ``module`` with generated ``params`` instead of its own (``torch.func.functional_call``).

    The module is not modified; gradients flow from the output into ``params`` (and on into the
    generator). Buffers, and parameters ``params`` lacks (partial generation), stay the module's own.

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
    """A standalone copy of ``module`` holding the generated weights (detached) as its parameters;
    parameters ``params`` lacks (partial generation) keep the module's values.

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


def decay_generated(weights: Mapping[str, torch.Tensor], weight_decay: float) -> None:
    """L2 weight decay on generated weights, through gradient hooks: backward adds
    ``weight_decay · W`` to the gradient of every ``W`` of two or more dimensions that records
    gradients (biases and norms are spared), the gradient of ``weight_decay / 2 · ‖W‖²``.

    Shapes:
        weights ``{name: tensor}`` as a generator returns them; nothing is returned.

    Example:
        >>> w = {"weight": torch.ones(2, 2, requires_grad=True), "bias": torch.ones(2, requires_grad=True)}
        >>> decay_generated(w, 0.5)
        >>> sum(v.sum() for v in w.values()).backward()
        >>> w["weight"].grad.tolist(), w["bias"].grad.tolist()
        ([[1.5, 1.5], [1.5, 1.5]], [1.0, 1.0])
    """
    if weight_decay and torch.is_grad_enabled():
        for w in weights.values():
            if w.dim() >= 2 and w.requires_grad:
                w.register_hook(functools.partial(_decayed, w.detach(), weight_decay))


def _decayed(weight: torch.Tensor, decay: float, grad: torch.Tensor) -> torch.Tensor:
    return grad + decay * weight


class Generated(nn.Module):
    """A target whose weights come from a generator: use it like the target itself.

    Each forward pass generates every weight ``spec`` describes and runs ``target`` with them, so
    training this module trains the generator; ``train()``/``eval()`` reach the target, so its
    dropout follows. The target's own parameters are templates (shapes and the forward pass) for
    the generated ones. With a partial spec (``describe(target, include=...)``) the others are used
    as they are: frozen by default (e.g. pretrained weights), or trained alongside the generator
    with ``train_own=True``.

    Args:
        generator: a :class:`~hyperkit.Generator` built on ``spec``.
        target: the network whose weights are generated.
        spec: ``describe(target, task)``; default: the generator's first spec.
        weight_decay: L2 weight decay on the generated matrices (:func:`decay_generated`) in
            every forward pass that records gradients: the counterpart of weight decay in direct
            training. The optimiser's weight decay shrinks the generator's own parameters, which
            does not shrink the generated ``W``. 0: none.
        train_own: with a partial spec, train the parameters the generator does not emit (they
            then appear in ``parameters()`` with ``requires_grad``). Default: frozen.

    Shapes:
        Those of ``target``'s forward.

    Example:
        >>> import hyperkit
        >>> target = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> spec = hyperkit.describe(target)
        >>> model = Generated(hyperkit.Generator(spec, head="lowrank", fourier_features=64, width=32), target)
        >>> model(torch.randn(5, 4)).shape, sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
        (torch.Size([5, 3]), True)
    """

    def __init__(self, generator: nn.Module, target: nn.Module, spec=None, weight_decay: float = 0.0,
                 train_own: bool = False):
        super().__init__()
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.generator, self.target = generator, target
        self.spec = spec if spec is not None else generator.default_spec
        self.weight_decay = weight_decay
        for name, parameter in target.named_parameters():
            parameter.requires_grad_(train_own and name not in self.spec.params)

    def weights(self, condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The generated weights, ``{name: tensor}`` as in ``target.named_parameters()``."""
        return self.generator(self.spec, condition)

    def forward(self, *inputs: Any, condition: torch.Tensor | None = None) -> Any:
        weights = self.weights(condition)
        decay_generated(weights, self.weight_decay)
        return call(self.target, weights, *inputs)

    def materialize(self) -> nn.Module:
        """A standalone copy of the target holding the current generated weights."""
        with torch.no_grad():
            return materialize(self.target, self.weights()).requires_grad_(True)
