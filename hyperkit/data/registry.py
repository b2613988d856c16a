"""Registry of dataset loaders: small functions registered by name, built by ``load_dataset``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

_DATASETS: dict[str, Callable] = {}


def register_dataset(fn: Callable | None = None, *, name: str | None = None):
    """Register a loader function under ``name`` (default: the function's name).

    Use as ``@register_dataset`` or ``@register_dataset(name="my_data")``. The loader's keyword
    arguments become the keyword arguments of :func:`load_dataset`.

    Raises:
        ValueError: if the name is already registered.

    Example:
        >>> @register_dataset
        ... def doc_example_data(seed=0):
        ...     return seed
        >>> load_dataset("doc_example_data", seed=3)
        3
    """

    def decorator(loader: Callable) -> Callable:
        key = name or loader.__name__
        if key in _DATASETS:
            raise ValueError(
                f"dataset {key!r} is already registered (by {_DATASETS[key].__module__}); "
                "choose another name or pass register_dataset(name=...)"
            )
        _DATASETS[key] = loader
        return loader

    return decorator(fn) if fn is not None else decorator


def load_dataset(name: str, **kwargs):
    """Load the registered dataset ``name``, passing ``kwargs`` to its loader.

    Raises:
        KeyError: if ``name`` is not registered; the message lists the registered names.

    Example:
        >>> load_dataset("sequence", num_train=8, num_test=4).num_classes
        4
    """
    if name not in _DATASETS:
        raise KeyError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(sorted(_DATASETS))}"
        )
    return _DATASETS[name](**kwargs)


def list_datasets(pattern: str | None = None) -> list[str]:
    """Sorted names of registered datasets, optionally filtered by a glob ``pattern`` ("*csv")."""
    names = sorted(_DATASETS)
    return fnmatch.filter(names, pattern) if pattern else names
