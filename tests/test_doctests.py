"""Run the ``>>>`` Examples in every module's docstrings, so the documentation cannot go stale.

One test per module of ``hyperkit``, ``hyperkit.targets`` and ``hyperkit.recipes`` (found by walking
the packages, so a new module is covered without editing this file). Each runs in a fresh temporary
working folder, with torch at one thread and fixed seeds, like the rest of the suite.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import pkgutil
import random
import tempfile

import numpy as np
import pytest
import torch

import hyperkit
import hyperkit.recipes
import hyperkit.targets

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# module -> why its examples are expected to fail for now, during a restructuring (strict: a
# module that starts passing fails this suite until its entry goes)
BEING_RESTRUCTURED: dict[str, str] = {}

# Importing these runs a program, not a library: they hold no examples.
NOT_IMPORTABLE = {"hyperkit.__main__"}

# Modules whose examples take more than a second or two: run with `pytest -m slow`.
SLOW: set[str] = set()


def _module_names() -> list[str]:
    names = []
    for package in (hyperkit, hyperkit.targets, hyperkit.recipes):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            if info.name.startswith(("hyperkit.targets.", "hyperkit.recipes.")) and package is hyperkit:
                continue  # walked from their own package below (their folders live outside hyperkit/)
            names.append(info.name)
    return sorted(set(names) - NOT_IMPORTABLE)


def _param(name: str):
    marks = []
    if name in BEING_RESTRUCTURED:
        marks.append(pytest.mark.xfail(strict=True, reason=BEING_RESTRUCTURED[name]))
    if name in SLOW:
        marks.append(pytest.mark.slow)
    return pytest.param(name, marks=marks, id=name)


@contextlib.contextmanager
def _forget_new_registrations(module: str):
    """Take out of every registry what an example registered (``@register_target`` on
    ``mlp_doc_example``), so later tests and a second run do not meet it. An example's functions
    belong to the module whose docstring holds it; what a module imported on the way registered
    (built-in targets, families) stays."""
    from hyperkit.registry import Registry

    before = {registry: set(registry.names()) for registry in Registry.instances}  # loads built-ins
    try:
        yield
    finally:
        for registry, names in before.items():
            for name in set(registry.names()) - names:
                if getattr(registry.get(name), "__module__", None) == module:
                    registry.unregister(name)


@pytest.mark.parametrize("name", [_param(name) for name in _module_names()])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # and so does mkdtemp()
    for variable in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(variable, raising=False)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module, name)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    with _forget_new_registrations(name):
        for test in tests:
            runner.run(test)
    result = runner.summarize(verbose=False)
    # a module without examples passes trivially; one with examples must pass all of them
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail (output above)"
