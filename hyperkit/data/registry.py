"""Registry of dataset loaders: small functions registered by name, built by ``load_dataset``."""

from __future__ import annotations

from collections.abc import Callable

from hyperkit.registry import Registry

DATASETS = Registry("dataset")


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
    return DATASETS.register(fn, name=name)


def load_dataset(name: str, **kwargs):
    """Load the registered dataset ``name``, passing ``kwargs`` to its loader.

    Raises:
        KeyError: if ``name`` is not registered; the message lists the registered names.

    Example:
        >>> load_dataset("sequence", num_train=8, num_test=4).num_classes
        4
    """
    return DATASETS.get(name)(**kwargs)


def list_datasets(pattern: str | None = None) -> list[str]:
    """Sorted names of registered datasets, optionally filtered by a glob ``pattern`` ("*csv")."""
    return DATASETS.names(pattern)
