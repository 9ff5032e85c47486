"""The Python snippets of the configuration, lifecycle and web-extras pages are excerpts
of example files (which other tests run), so the docs cannot drift from working code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["configuration.md", "lifecycle.md", "web-extras.md"]
EXAMPLES = "\n".join(path.read_text() for path in sorted((ROOT / "examples").glob("*.py")))


def snippets(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_snippets_come_from_examples(page: str) -> None:
    """Every ```python block of the page appears verbatim in an example file."""
    blocks = snippets(page)
    assert blocks, f"{page} has no python snippet"
    for block in blocks:
        assert block in EXAMPLES, f"{page}: snippet not found in examples/:\n{block}"


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page: str) -> None:
    """Relative links of the page point at existing files."""
    text = (ROOT / "docs" / page).read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (ROOT / "docs" / target).resolve().exists(), f"{page}: broken link {target}"
