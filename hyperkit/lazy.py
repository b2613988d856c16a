"""Public names imported on first use (PEP 562), for a package face that must load nothing heavy."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for ``table`` (``{public name: module}``).

    A name is imported from its module on first access and then stored in the package, so later
    lookups do not come back here.

    Example:
        >>> import types, sys
        >>> sys.modules["lazy_doc_example"] = package = types.ModuleType("lazy_doc_example")
        >>> package.__getattr__, package.__dir__ = lazy_exports("lazy_doc_example", {"Fraction": "fractions"})
        >>> package.Fraction(1, 2), "Fraction" in vars(package)
        (Fraction(1, 2), True)
    """

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
