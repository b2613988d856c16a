"""Every python block of the user guides runs, in order, as one script per page."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))


def python_blocks(page: str) -> str:
    text = (DOCS / page).read_text()
    return "\n\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)])
def test_doc_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks(page), str(DOCS / page), "exec"), {"__name__": f"docs_{page}"})
