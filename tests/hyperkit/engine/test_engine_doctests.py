"""Run the Examples in hyperkit.engine's docstrings, so the documentation cannot go stale."""

import doctest
import importlib
import tempfile

import pytest

MODULES = ["checkpoint", "distributed", "precision", "progress", "schedule", "tensorboard"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # examples' mkdtemp() lands here
    for variable in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(variable, raising=False)
    module = importlib.import_module(f"hyperkit.engine.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
