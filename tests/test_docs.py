"""Every python block of the user guides runs, in order, as one script per page."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))


def python_blocks(page: str) -> str:
    text = (ROOT / page).read_text()
    return "\n\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))


@pytest.fixture
def forget_doc_registrations():
    """Take out of every registry what a page registered, so later tests (``hyperkit ls``) do
    not meet a recipe or target whose module was a page's code."""
    yield
    from hyperkit.registry import Registry

    for registry in Registry.instances:
        for name in registry.names():
            if getattr(registry.get(name), "__module__", "").startswith("docs_"):
                registry.unregister(name)


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)])
def test_doc_page_code_runs(page, tmp_path, monkeypatch, forget_doc_registrations):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks(page), str(ROOT / page), "exec"), {"__name__": "docs_" + page.replace("/", "_")})
