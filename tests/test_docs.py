"""The docs cannot drift from the code: every Python snippet in them runs.

Snippets are the ```python blocks of README.md and docs/*.md. Blocks that include an
example file (``--8<--``) are covered by the tests of that example. Every other block is
executed as a module; the ``test_*`` functions it defines are then run, with the
``aiohttp_client`` fixture when they ask for it.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from gemstone_aio.event import InMemoryEventBus
from gemstone_aio.testing import EventCapture, ServiceKit

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$', re.MULTILINE)


def snippets() -> list[Any]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, match in enumerate(FENCE.finditer(path.read_text(encoding="utf-8"))):
            code = match.group(1)
            if INCLUDE.search(code):
                continue
            found.append(pytest.param(code, id=f"{path.relative_to(ROOT)}-{index}"))
    return found


def included_files() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        names.update(INCLUDE.findall(path.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("code", snippets())
async def test_snippet_runs(
    code: str, aiohttp_client: AiohttpClient, gemstone_event_bus: InMemoryEventBus
) -> None:
    """The snippet executes, and the tests it defines pass (with the fixtures they name:
    ``aiohttp_client`` and the test kit's ``gemstone_services`` and ``gemstone_events``)."""
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    exec(compile(code, "<snippet>", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(value):
            wanted = inspect.signature(value).parameters
            events = EventCapture()
            kit = ServiceKit(events, gemstone_event_bus)
            fixtures = {
                "aiohttp_client": aiohttp_client,
                "gemstone_services": kit,
                "gemstone_events": events,
            }
            try:
                await value(**{key: fixtures[key] for key in wanted})
            finally:
                await kit.aclose()


def test_included_example_files_exist() -> None:
    """Every file the docs include exists (mkdocs --strict checks it too)."""
    for name in included_files():
        path, _, section = name.partition(":")  # "file.py:section" includes a part
        assert (ROOT / path).is_file(), name
        if section:
            text = (ROOT / path).read_text(encoding="utf-8")
            assert f"--8<-- [start:{section}]" in text, name
            assert f"--8<-- [end:{section}]" in text, name
