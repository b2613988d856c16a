"""Every python block of the user guides runs, in order, as one script per page."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))


def python_blocks(page: str) -> str:
    text = (ROOT / page).read_text()
    return "\n\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)])
def test_doc_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks(page), str(ROOT / page), "exec"), {"__name__": "docs_" + page.replace("/", "_")})
