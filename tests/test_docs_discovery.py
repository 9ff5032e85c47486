"""docs/discovery.md: every Python snippet is a verbatim piece of a tested example."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_python_snippets_come_from_examples() -> None:
    """Each python code block appears as is in a file under examples/ (so it cannot drift)."""
    page = (ROOT / "docs" / "discovery.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    examples = [path.read_text() for path in (ROOT / "examples").rglob("*.py")]
    assert len(snippets) >= 3
    for snippet in snippets:
        assert any(snippet in text for text in examples), f"not in any example:\n{snippet}"


def test_relative_links_resolve() -> None:
    """Links to files of the repository point at files that exist."""
    page = (ROOT / "docs" / "discovery.md").read_text()
    for target in re.findall(r"\]\((\.\./[^)#]+)\)", page):
        assert (ROOT / "docs" / target).resolve().exists(), target
