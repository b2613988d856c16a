"""Adapters a hypernetwork can generate for a fixed (e.g. pretrained) model: LoRA and FiLM.

:func:`add_adapters` puts adapters into any model in place and returns the names of their
parameters; ``describe(model, include=those names)`` then describes only the adapters, so a
generator emits them from a condition while the model's own weights stay as they are (partial
generation, :func:`hyperkit.describe`). Both adapters start as the identity: the adapted model
computes what the model did (LoRA's ``B`` and FiLM's shift start at zero, FiLM's scale at one).

- **LoRA** (Hu et al., 2021): ``y = base(x) + (alpha / rank) · x Aᵀ Bᵀ`` around an ``nn.Linear``,
  ``A`` of shape ``(rank, in)`` with PyTorch's Linear init, ``B`` of shape ``(out, rank)`` zero.
- **FiLM** (Perez et al., 2018): ``y = γ ⊙ f(x) + β`` per channel of a module's output.

Example:
    >>> import torch, torch.nn as nn, hyperkit
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> x = torch.randn(3, 4)
    >>> before = model(x)
    >>> names = add_adapters(model, "lora", targets=["0", "2"], rank=2)
    >>> names
    ['0.lora_a', '0.lora_b', '2.lora_a', '2.lora_b']
    >>> torch.equal(model(x), before)  # B starts at zero: the model is unchanged
    True
    >>> spec = hyperkit.describe(model, include=names)
    >>> spec.num_weights
    44
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from hyperkit.describers import describe_linear
from hyperkit.spec import LayerDescription, ParamInfo, find_describer, register_layer

__all__ = ["FiLM", "LoRALinear", "add_adapters"]


class LoRALinear(nn.Module):
    """An ``nn.Linear`` with a low-rank update: ``base(x) + (alpha / rank) · (x Aᵀ) Bᵀ``.

    Args:
        base: the linear layer adapted (kept as ``base``; its parameters are unchanged).
        rank: the rank of the update.
        alpha: its scale; the update is multiplied by ``alpha / rank``. Default: ``rank`` (×1).

    Shapes:
        x ``(..., in_features)`` → ``(..., out_features)``; ``lora_a`` ``(rank, in_features)``,
        ``lora_b`` ``(out_features, rank)``.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base, self.rank = base, rank
        self.scaling = (alpha if alpha is not None else rank) / rank
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, **factory))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **factory))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear inits its weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scaling


class FiLM(nn.Module):
    """Feature-wise scale and shift of a module's output: ``scale ⊙ inner(x) + shift``.

    Args:
        inner: the module whose output is modulated.
        num_channels: channels of that output.
        channel_dim: the dimension of the channels (``-1`` for a Linear's output, ``1`` for a
            convolution's ``(N, C, H, W)``).

    Shapes:
        those of ``inner``; ``scale`` and ``shift`` ``(num_channels,)``.
    """

    def __init__(self, inner: nn.Module, num_channels: int, channel_dim: int = -1):
        super().__init__()
        self.inner, self.channel_dim = inner, channel_dim
        self.film_scale = nn.Parameter(torch.ones(num_channels))
        self.film_shift = nn.Parameter(torch.zeros(num_channels))

    def forward(self, *args, **kwargs) -> torch.Tensor:
        y = self.inner(*args, **kwargs)
        shape = [1] * y.dim()
        shape[self.channel_dim] = -1
        return y * self.film_scale.view(shape) + self.film_shift.view(shape)


def _inner(description: LayerDescription, prefix: str) -> dict[str, ParamInfo]:
    return {f"{prefix}.{name}": info for name, info in description.params.items()}


@register_layer(LoRALinear, "lora_linear")
def describe_lora(m: LoRALinear) -> LayerDescription:
    base = describe_linear(m.base)
    std = 1.0 / math.sqrt(3.0 * m.base.in_features)
    return LayerDescription(
        base.structure,
        {**_inner(base, "base"), "lora_a": ParamInfo("lora_a", ("row", "col"), std=std),
         "lora_b": ParamInfo("lora_b", ("row", "col"), mean=0.0, std=0.0)},
    )


@register_layer(FiLM, "film")
def describe_film(m: FiLM) -> LayerDescription:
    found = find_describer(type(m.inner))
    if found is None:
        raise TypeError(f"FiLM around {type(m.inner).__name__}: no describer registered for it")
    inner = found[1](m.inner)
    size = m.film_scale.numel()
    return LayerDescription(
        {**inner.structure, "out_size": size},
        {**_inner(inner, "inner"), "film_scale": ParamInfo("film_scale", ("row",), mean=1.0, std=0.0),
         "film_shift": ParamInfo("film_shift", ("row",), mean=0.0, std=0.0)},
    )


def add_adapters(model: nn.Module, kind: str, targets: Sequence[str] | str = "*", *, rank: int = 4,
                 alpha: float | None = None, channel_dim: int = -1) -> list[str]:
    """Put adapters into ``model`` in place and return the names of their parameters.

    Args:
        model: any module; it keeps its own parameters.
        kind: ``"lora"`` (around each selected ``nn.Linear``) or ``"film"`` (on the output of each
            selected ``nn.Linear`` or convolution).
        targets: globs over module names (``"encoder.*"``, ``["0", "2"]``). Default: every
            eligible module.
        rank, alpha: LoRA's rank and scale (``alpha / rank``; default ``alpha = rank``).
        channel_dim: FiLM's channel dimension of the outputs (``-1`` after a Linear, ``1`` after a
            convolution).

    Returns:
        the new parameters' names, in ``model.named_parameters()`` order — pass them to
        ``hyperkit.describe(model, include=names)`` to generate the adapters only.

    Raises:
        ValueError: an unknown ``kind``, or ``targets`` selecting no eligible module.
    """
    eligible = {"lora": (nn.Linear,), "film": (nn.Linear, nn.Conv1d, nn.Conv2d)}
    if kind not in eligible:
        raise ValueError(f"unknown adapter kind {kind!r}; choose 'lora' or 'film'")
    globs = [targets] if isinstance(targets, str) else list(targets)
    chosen = [(name, m) for name, m in model.named_modules()
              if name and type(m) in eligible[kind] and any(fnmatch.fnmatchcase(name, g) for g in globs)]
    if not chosen:
        kinds = ", ".join(t.__name__ for t in eligible[kind])
        options = [n for n, m in model.named_modules() if n and type(m) in eligible[kind]]
        raise ValueError(f"targets={targets!r} select no {kinds} in {type(model).__name__}; candidates: "
                         f"{', '.join(options) or '(none)'}")
    for name, module in chosen:
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        if kind == "lora":
            adapter = LoRALinear(module, rank, alpha)
        else:
            channels = module.out_features if isinstance(module, nn.Linear) else module.out_channels
            adapter = FiLM(module, channels, channel_dim)
        setattr(owner, leaf, adapter)
    suffixes = ("lora_a", "lora_b") if kind == "lora" else ("film_scale", "film_shift")
    prefixes = {name for name, _ in chosen}
    return [n for n, _ in model.named_parameters()
            if n.rpartition(".")[2] in suffixes and n.rpartition(".")[0] in prefixes]
