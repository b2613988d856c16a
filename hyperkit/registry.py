"""Registry of target architectures: small builder functions registered by name (timm style)."""

from __future__ import annotations

import fnmatch
from typing import Callable

import torch.nn as nn

_TARGETS: dict[str, Callable[..., nn.Module]] = {}


def register_target(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Register a builder function that returns a target ``nn.Module``.

    Use as ``@register_target`` or ``@register_target(name="my_mlp")``. The builder's keyword
    arguments become the arguments of :func:`create_target`.

    Args:
        fn: the builder function.
        name: registry name; defaults to ``fn.__name__``.

    Raises:
        ValueError: if the name is already registered.

    Example:
        >>> @register_target
        ... def mlp_doc_example(in_features=4, num_classes=3):
        ...     return nn.Sequential(nn.Linear(in_features, 8), nn.ReLU(), nn.Linear(8, num_classes))
        >>> create_target("mlp_doc_example", in_features=5)[0].in_features
        5
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _TARGETS:
            raise ValueError(
                f"target {key!r} is already registered (by {_TARGETS[key].__module__}); "
                "choose another name or pass register_target(name=...)"
            )
        _TARGETS[key] = builder
        return builder

    return decorator(fn) if fn is not None else decorator


def create_target(name: str, **kwargs) -> nn.Module:
    """Build the registered target ``name`` with the builder's keyword arguments.

    Example:
        >>> model = create_target("mlp_tiny")
        >>> sum(p.numel() for p in model.parameters()) > 0
        True
    """
    _load_builtin_targets()
    if name not in _TARGETS:
        close = fnmatch.filter(_TARGETS, f"*{name.split('_')[0]}*") or sorted(_TARGETS)
        raise KeyError(f"unknown target {name!r}; registered targets include: {', '.join(close)}")
    return _TARGETS[name](**kwargs)


def list_targets(pattern: str | None = None) -> list[str]:
    """Sorted names of registered targets, optionally filtered by a glob ``pattern`` ("gcn*")."""
    _load_builtin_targets()
    names = sorted(_TARGETS)
    return fnmatch.filter(names, pattern) if pattern else names


def _load_builtin_targets() -> None:
    # Importing the package registers the built-in families; done lazily to avoid an import cycle.
    import hyperkit.targets  # noqa: F401
