"""Registries of named builder functions (timm style): one class serves targets and datasets."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Callable, ClassVar

from hyperkit.config import _did_you_mean, import_path

if TYPE_CHECKING:
    import torch.nn as nn


class Registry:
    """Builder functions registered by name.

    Args:
        kind: what the builders make ("target", "dataset"), used in error messages.
        on_lookup: called before every lookup (lazy registration of the built-in entries).
        empty_hint: what an "unknown name" error adds while nothing is registered (where the
            built-in entries come from).

    ``Registry.instances`` lists every registry created, so that code which must clean up after
    itself (a test that registers builders) can reach them all.
    """

    instances: ClassVar[list[Registry]] = []

    def __init__(self, kind: str, on_lookup: Callable[[], None] | None = None, empty_hint: str = ""):
        self.kind, self._on_lookup, self._entries, self._empty_hint = kind, on_lookup, {}, empty_hint
        self.plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        Registry.instances.append(self)

    def register(self, fn: Callable | None = None, *, name: str | None = None):
        """Decorator: ``@registry.register`` or ``@registry.register(name=...)``; duplicates raise."""

        def decorator(builder: Callable) -> Callable:
            key = name or builder.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered (by "
                                 f"{self._entries[key].__module__}); choose another name or pass name=...")
            self._entries[key] = builder
            return builder

        return decorator(fn) if fn is not None else decorator

    def unregister(self, name: str) -> Callable:
        """Remove ``name`` and return its builder (to register a changed one under the same name,
        or to undo a registration); a KeyError lists the registered names."""
        if name not in self._entries:
            raise KeyError(self._unknown(name))
        return self._entries.pop(name)

    def get(self, name: str) -> Callable:
        """The builder registered as ``name``, or the callable a dotted import path names.

        A name with a dot that is not registered (``my_targets.res_mlp``) is imported by
        :func:`hyperkit.config.import_path`, with the working folder on the import path; importing
        the module runs its registrations, so the names it registers work from then on.

        Raises:
            KeyError: an unknown name (with the registered names and a did-you-mean), or a dotted
                path that does not import (with what was tried).
        """
        if self._on_lookup:
            self._on_lookup()
        if name in self._entries:
            return self._entries[name]
        if not isinstance(name, str) or "." not in name:
            raise KeyError(self._unknown(name))
        try:
            builder = import_path(name)
        except LookupError as err:
            raise KeyError(f"unknown {self.kind} {name!r}: it is not registered, and {err.args[0]}") from None
        if not callable(builder):
            raise KeyError(f"{self.kind} {name!r} imports to a {type(builder).__name__}, which is not callable; "
                           f"name a builder function or class")
        return builder

    def _unknown(self, name: str) -> str:
        names = sorted(self._entries)
        if not names and self._empty_hint:
            return f"unknown {self.kind} {name!r}: none is registered yet; {self._empty_hint}"
        return (f"unknown {self.kind} {name!r}{_did_you_mean(name, names)}; registered {self.plural}: "
                f"{', '.join(names)}; or name your own builder by its import path, e.g. "
                f"my_module.my_{self.kind.replace(' ', '_')} (a my_module.py in the working folder)")

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a glob ``pattern`` ("gcn*")."""
        if self._on_lookup:
            self._on_lookup()
        names = sorted(self._entries)
        return fnmatch.filter(names, pattern) if pattern else names


# The built-in targets register when the package hyperkit.targets is imported: `hyperkit.create_target`
# and `hyperkit.list_targets` are that package's (hyperkit/__init__.py), as are the recipes and the
# CLI, which import it. This module knows no target (timm's _registry.py).
TARGETS = Registry("target", empty_hint="the built-in ones register when hyperkit.targets is imported "
                   "(hyperkit.create_target and hyperkit.list_targets do that)")


def register_target(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Register a builder function that returns a target ``nn.Module``.

    Use as ``@register_target`` or ``@register_target(name="my_mlp")``. The builder's keyword
    arguments become the arguments of :func:`create_target`.

    Raises:
        ValueError: if the name is already registered.

    Example:
        >>> import torch.nn as nn
        >>> @register_target
        ... def mlp_doc_example(in_features=4, num_classes=3):
        ...     return nn.Sequential(nn.Linear(in_features, 8), nn.ReLU(), nn.Linear(8, num_classes))
        >>> create_target("mlp_doc_example", in_features=5)[0].in_features
        5
    """
    return TARGETS.register(fn, name=name)


def create_target(name: str, **kwargs) -> nn.Module:
    """Build the registered target ``name`` with the builder's keyword arguments.

    Example:
        >>> model = create_target("mlp_tiny")
        >>> sum(p.numel() for p in model.parameters()) > 0
        True
    """
    return TARGETS.get(name)(**kwargs)


def list_targets(pattern: str | None = None) -> list[str]:
    """Sorted names of registered targets, optionally filtered by a glob ``pattern`` ("gcn*")."""
    return TARGETS.names(pattern)
