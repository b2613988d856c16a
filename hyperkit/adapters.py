"""Adapters a hypernetwork can generate for a fixed (e.g. pretrained) model: LoRA and FiLM.

:func:`add_adapters` puts adapters into any model in place and returns the names of their
parameters; ``describe(model, include=those names)`` then describes only the adapters, so a
generator emits them from a condition while the model's own weights stay as they are (partial
generation, :func:`hyperkit.describe`). Both adapters start as the identity: the adapted model
computes what the model did (LoRA's ``B`` and FiLM's shift start at zero, FiLM's scale at one).

- **LoRA** (Hu et al., 2021): ``y = base(x) + (alpha / rank) · x Aᵀ Bᵀ`` around an ``nn.Linear``,
  ``A`` of shape ``(rank, in)`` with PyTorch's Linear init, ``B`` of shape ``(out, rank)`` zero;
  around an ``nn.MultiheadAttention``, one such update of its packed q/k/v projection and one of
  its output projection; around a convolution, an update ``B A`` of its kernel (a ``rank``-channel
  convolution followed by a 1×1 one); around an ``nn.Embedding``, an update ``B A`` of its table
  (``B`` one row per token, ``A`` mapping to the embedding): what a token means can change.
- **FiLM** (Perez et al., 2018): ``y = γ ⊙ f(x) + β`` per channel of a module's output.

:func:`merge_adapters` folds adapters (trained or generated for one task) into the weights of a
plain copy of the model: the result has the model's own layer types and no adapters.

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
    >>> merged = merge_adapters(model)  # a plain Sequential of Linear layers again
    >>> [type(m).__name__ for m in merged]
    ['Linear', 'ReLU', 'Linear']
"""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import torch
import torch.nn as nn

from hyperkit.describers import describe_attention, describe_embedding, describe_linear
from hyperkit.spec import LayerDescription, ParamInfo, find_describer, register_layer

__all__ = ["FiLM", "LoRAAttention", "LoRAConv", "LoRAEmbedding", "LoRALinear", "add_adapters", "merge_adapters"]


class _LoRA(nn.Module):
    """What every LoRA wrapper holds: the wrapped ``base``, the ``rank`` and the update's scale
    ``alpha / rank`` (``alpha`` defaults to ``rank``)."""

    def __init__(self, base: nn.Module, rank: int, alpha: float | None):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base, self.rank = base, rank
        self.scaling = (alpha if alpha is not None else rank) / rank


class _LoRAWeight(_LoRA):
    """A LoRA wrapper of a layer with one ``weight``: it answers ``weight`` (the updated one,
    :meth:`merged_weight`) and ``bias`` as the layer does, for modules that read their layer's
    weights instead of calling it (nn.TransformerEncoderLayer's inference fast path reads
    ``linear1.weight`` / ``linear2.weight``)."""

    def merged_weight(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def weight(self) -> torch.Tensor:
        return self.merged_weight()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias


class LoRALinear(_LoRAWeight):
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
        super().__init__(base, rank, alpha)
        self.lora_a, self.lora_b = _lora_pair(rank, base.out_features, (base.in_features,), base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scaling

    def merged_weight(self) -> torch.Tensor:
        """``W + (alpha / rank) · B A``: the weight of one ``nn.Linear`` computing the same."""
        return _updated(self.base.weight, self.lora_a, self.lora_b, self.scaling)


def _updated(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
    return weight + scaling * (b @ a)


def _lora_pair(rank: int, rows: int, cols: tuple[int, ...], like: torch.Tensor) -> tuple[nn.Parameter, nn.Parameter]:
    """``A (rank, *cols)`` initialised as nn.Linear / nn.Conv init their weight (fan-in: the product
    of ``cols``), ``B (rows, rank)`` at zero."""
    a = nn.Parameter(torch.empty(rank, *cols, device=like.device, dtype=like.dtype))
    nn.init.kaiming_uniform_(a, a=math.sqrt(5))
    return a, nn.Parameter(torch.zeros(rows, rank, device=like.device, dtype=like.dtype))


class LoRAAttention(_LoRA):
    """An ``nn.MultiheadAttention`` whose packed q/k/v projection and output projection each get
    a low-rank update: ``W_in + s · B_in A_in`` and ``W_out + s · B_out A_out``, ``s = alpha / rank``.

    It calls the wrapped attention with the updated weights, so it takes the same arguments and
    masks, and it answers the attributes that ``nn.TransformerEncoderLayer`` reads from its
    ``self_attn`` (``in_proj_weight`` and ``out_proj.weight`` are the updated ones), so encoder
    layers keep working, their inference fast path included.

    Args:
        base: the attention adapted (kept as ``base``, unchanged); its query, key and value must
            share the embedding size (PyTorch's packed ``in_proj_weight``).
        rank, alpha: as for :class:`LoRALinear`.

    Shapes:
        those of ``base``; ``lora_in_a`` ``(rank, E)``, ``lora_in_b`` ``(3E, rank)``,
        ``lora_out_a`` ``(rank, E)``, ``lora_out_b`` ``(E, rank)``.
    """

    def __init__(self, base: nn.MultiheadAttention, rank: int, alpha: float | None = None):
        super().__init__(base, rank, alpha)
        if not base._qkv_same_embed_dim:
            raise ValueError("LoRA on nn.MultiheadAttention needs kdim == vdim == embed_dim (one packed "
                             f"in_proj_weight); this one has kdim={base.kdim}, vdim={base.vdim}, "
                             f"embed_dim={base.embed_dim}")
        e = base.embed_dim
        self.lora_in_a, self.lora_in_b = _lora_pair(rank, 3 * e, (e,), base.in_proj_weight)
        self.lora_out_a, self.lora_out_b = _lora_pair(rank, e, (e,), base.in_proj_weight)

    @property
    def in_proj_weight(self) -> torch.Tensor:
        return _updated(self.base.in_proj_weight, self.lora_in_a, self.lora_in_b, self.scaling)

    @property
    def out_proj(self) -> SimpleNamespace:
        out = self.base.out_proj
        return SimpleNamespace(weight=_updated(out.weight, self.lora_out_a, self.lora_out_b, self.scaling), bias=out.bias)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base" or "base" not in self.__dict__.get("_modules", {}):
                raise
            return getattr(self.base, name)  # batch_first, num_heads, in_proj_bias …

    def forward(self, *args, **kwargs):
        weights = {"in_proj_weight": self.in_proj_weight, "out_proj.weight": self.out_proj.weight}
        return torch.func.functional_call(self.base, weights, args, kwargs)


class LoRAConv(_LoRAWeight):
    """A convolution with a low-rank update of its kernel: ``W + (alpha / rank) · B A``, i.e. the
    convolution plus a ``rank``-channel convolution of the same kernel followed by a 1×1 one.

    Args:
        base: the ``nn.Conv1d`` / ``nn.Conv2d`` adapted (kept as ``base``, unchanged; ``groups=1``).
        rank, alpha: as for :class:`LoRALinear`.

    Shapes:
        those of ``base``; ``lora_a`` ``(rank, in_channels, *kernel_size)``, ``lora_b``
        ``(out_channels, rank)``.
    """

    def __init__(self, base: nn.Conv1d | nn.Conv2d, rank: int, alpha: float | None = None):
        super().__init__(base, rank, alpha)
        if base.groups != 1:
            raise ValueError(f"LoRA on a grouped convolution (groups={base.groups}) is not supported; adapt it "
                             "with FiLM (add_adapters(model, 'film', channel_dim=1)) instead")
        self.lora_a, self.lora_b = _lora_pair(rank, base.out_channels, (base.in_channels, *base.kernel_size),
                                              base.weight)

    def merged_weight(self) -> torch.Tensor:
        """The kernel of one convolution computing the same."""
        a = self.lora_a.flatten(1)
        return _updated(self.base.weight.flatten(1), a, self.lora_b, self.scaling).view_as(self.base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base._conv_forward(x, self.merged_weight(), self.base.bias)


class LoRAEmbedding(_LoRAWeight):
    """An ``nn.Embedding`` with a low-rank update of its table: ``E + (alpha / rank) · B A``, so
    token ``t`` is embedded as ``E[t] + (alpha / rank) · B[t] A``.

    Args:
        base: the embedding adapted (kept as ``base``, unchanged).
        rank, alpha: as for :class:`LoRALinear`.

    Shapes:
        token ids ``(...)`` → ``(..., embedding_dim)``; ``lora_a`` ``(rank, embedding_dim)``,
        ``lora_b`` ``(num_embeddings, rank)``.
    """

    def __init__(self, base: nn.Embedding, rank: int, alpha: float | None = None):
        super().__init__(base, rank, alpha)
        self.lora_a, self.lora_b = _lora_pair(rank, base.num_embeddings, (base.embedding_dim,), base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.lora_b[x] @ self.lora_a) * self.scaling

    def merged_weight(self) -> torch.Tensor:
        """The table of one ``nn.Embedding`` computing the same."""
        return _updated(self.base.weight, self.lora_a, self.lora_b, self.scaling)

    @property
    def bias(self) -> None:
        return None


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


def _describe_lora_weight(m: _LoRAWeight, base: LayerDescription, a_axes: tuple = ("row", "col")) -> LayerDescription:
    """The base layer's description with ``lora_a`` (initialised like a weight of fan-in
    ``lora_a[0].numel()``) and ``lora_b`` (zero) added."""
    std = 1.0 / math.sqrt(3.0 * m.lora_a[0].numel())
    return LayerDescription(
        base.structure,
        {**_inner(base, "base"), "lora_a": ParamInfo("lora_a", a_axes, std=std),
         "lora_b": ParamInfo("lora_b", ("row", "col"), mean=0.0, std=0.0)},
    )


@register_layer(LoRALinear, "lora_linear")
def describe_lora(m: LoRALinear) -> LayerDescription:
    return _describe_lora_weight(m, describe_linear(m.base))


@register_layer(LoRAAttention, "lora_attention")
def describe_lora_attention(m: LoRAAttention) -> LayerDescription:
    base = describe_attention(m.base)
    in_rows = base.params["in_proj_weight"].axes[0]  # (block, head, row-in-head) as the projection's
    std = 1.0 / math.sqrt(3.0 * m.base.embed_dim)
    return LayerDescription(
        base.structure,
        {**_inner(base, "base"),
         "lora_in_a": ParamInfo("lora_a", ("row", "col"), std=std),
         "lora_in_b": ParamInfo("lora_b", (in_rows, "col"), mean=0.0, std=0.0),
         "lora_out_a": ParamInfo("lora_a", ("row", "col"), std=std),
         "lora_out_b": ParamInfo("lora_b", ("row", "col"), mean=0.0, std=0.0)},
    )


@register_layer(LoRAConv, "lora_conv")
def describe_lora_conv(m: LoRAConv) -> LayerDescription:
    found = find_describer(type(m.base))
    base = found[1](m.base)
    kernel_axes = base.params["weight"].axes[2:]  # the kernel taps, described as the conv's are
    return _describe_lora_weight(m, base, ("row", "col", *kernel_axes))


@register_layer(LoRAEmbedding, "lora_embedding")
def describe_lora_embedding(m: LoRAEmbedding) -> LayerDescription:
    return _describe_lora_weight(m, describe_embedding(m.base))


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


_ELIGIBLE = {"lora": (nn.Linear, nn.MultiheadAttention, nn.Conv1d, nn.Conv2d, nn.Embedding),
             "film": (nn.Linear, nn.Conv1d, nn.Conv2d)}
_SUFFIXES = {"lora": ("lora_a", "lora_b", "lora_in_a", "lora_in_b", "lora_out_a", "lora_out_b"),
             "film": ("film_scale", "film_shift")}


def add_adapters(model: nn.Module, kind: str, targets: Sequence[str] | str = "*", *, rank: int = 4,
                 alpha: float | None = None, channel_dim: int = -1) -> list[str]:
    """Put adapters into ``model`` in place and return the names of their parameters.

    Args:
        model: any module; it keeps its own parameters.
        kind: ``"lora"`` (around each selected ``nn.Linear``, ``nn.MultiheadAttention`` — e.g. the
            ``self_attn`` of a ``nn.TransformerEncoderLayer`` —, convolution or ``nn.Embedding``)
            or ``"film"`` (on the output of each selected ``nn.Linear`` or convolution).
        targets: globs over module names (``"encoder.*"``, ``["0", "2"]``,
            ``"layers.*.self_attn"``). Default: every eligible module.
        rank, alpha: LoRA's rank and scale (``alpha / rank``; default ``alpha = rank``).
        channel_dim: FiLM's channel dimension of the outputs (``-1`` after a Linear, ``1`` after a
            convolution).

    Returns:
        the new parameters' names, in ``model.named_parameters()`` order — pass them to
        ``hyperkit.describe(model, include=names)`` to generate the adapters only.

    Raises:
        ValueError: an unknown ``kind``, or ``targets`` selecting no eligible module.
    """
    if kind not in _ELIGIBLE:
        raise ValueError(f"unknown adapter kind {kind!r}; choose 'lora' or 'film'")
    globs = [targets] if isinstance(targets, str) else list(targets)
    chosen = [(name, m) for name, m in model.named_modules()
              if name and type(m) in _ELIGIBLE[kind] and any(fnmatch.fnmatchcase(name, g) for g in globs)]
    if not chosen:
        *most, last = [t.__name__ for t in _ELIGIBLE[kind]]
        kinds = f"{', '.join(most)} or {last}"
        options = [n for n, m in model.named_modules() if n and type(m) in _ELIGIBLE[kind]]
        raise ValueError(f"targets={targets!r} select no {kinds} in {type(model).__name__}; candidates: "
                         f"{', '.join(options) or '(none)'}")
    for name, module in chosen:
        if kind == "film":
            channels = module.out_features if isinstance(module, nn.Linear) else module.out_channels
            adapter = FiLM(module, channels, channel_dim)
        elif isinstance(module, nn.MultiheadAttention):
            adapter = LoRAAttention(module, rank, alpha)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            adapter = LoRAConv(module, rank, alpha)
        elif isinstance(module, nn.Embedding):
            adapter = LoRAEmbedding(module, rank, alpha)
        else:
            adapter = LoRALinear(module, rank, alpha)
        _replace(model, name, adapter)
    prefixes = {name for name, _ in chosen}
    return [n for n, _ in model.named_parameters()
            if n.rpartition(".")[2] in _SUFFIXES[kind] and n.rpartition(".")[0] in prefixes]


def merge_adapters(model: nn.Module, weights: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A copy of ``model`` with its adapters folded into plain layers; ``model`` is unchanged.

    LoRA becomes the ``nn.Linear`` / ``nn.MultiheadAttention`` / convolution / ``nn.Embedding``
    it wraps, with ``W + s · B A`` as weights. FiLM around a Linear or a convolution whose channels it scales (``channel_dim`` 1 for
    a convolution) becomes that layer with rows scaled and the shift added to its bias; a FiLM that
    cannot be folded (other channel dimensions) stays, with its values.

    Args:
        model: a model holding adapters (:func:`add_adapters`).
        weights: values to use for some of its parameters first, by name — e.g. the adapters a
            generator emitted for one task (``Generated.weights(condition)``).

    Returns:
        the merged copy, which computes what ``hyperkit.call(model, weights, …)`` computes (to
        rounding) and can be saved, exported or fine-tuned on its own.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> names = add_adapters(model, "lora", rank=2)
        >>> task = {n: torch.randn_like(p) for n, p in model.named_parameters() if n in names}
        >>> x = torch.randn(3, 4)
        >>> plain = merge_adapters(model, task)
        >>> torch.allclose(plain(x), torch.func.functional_call(model, task, (x,)), atol=1e-6)
        True
    """
    merged = copy.deepcopy(model)
    if weights:
        own = dict(merged.named_parameters())
        unknown = sorted(set(weights) - set(own))
        if unknown:
            raise KeyError(f"merge_adapters: the model has no parameter {', '.join(map(repr, unknown[:5]))}")
        with torch.no_grad():
            for name, value in weights.items():
                own[name].copy_(value)
    with torch.no_grad():
        for name, module in reversed(list(merged.named_modules())):  # children before their parents
            plain = _folded(module)
            if plain is not None:
                if not name:
                    return plain
                _replace(merged, name, plain)
    return merged


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _folded(module: nn.Module) -> nn.Module | None:
    """The plain layer an adapter folds into, or None for anything else (or an unfoldable FiLM)."""
    if isinstance(module, _LoRAWeight):
        module.base.weight.copy_(module.merged_weight())
        return module.base
    if isinstance(module, LoRAAttention):
        module.base.in_proj_weight.copy_(module.in_proj_weight)
        module.base.out_proj.weight.copy_(module.out_proj.weight)
        return module.base
    if isinstance(module, FiLM):
        inner = module.inner
        conv = isinstance(inner, (nn.Conv1d, nn.Conv2d))
        if not (isinstance(inner, nn.Linear) and module.channel_dim == -1 or conv and module.channel_dim == 1):
            return None
        scale = module.film_scale.view(-1, *[1] * (inner.weight.dim() - 1))
        inner.weight.mul_(scale)
        if inner.bias is None:
            inner.bias = nn.Parameter(torch.zeros_like(module.film_shift))
        inner.bias.mul_(module.film_scale).add_(module.film_shift)
        return inner
    return None
