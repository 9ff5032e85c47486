"""Reading Google-style docstrings for the self-description.

Only what the OpenRPC document needs is extracted: the summary (the first paragraph),
the prose that remains once the structured sections are taken out, the per-parameter
descriptions of ``Args:`` and the text of ``Returns:``. Anything unusual is kept as
prose rather than guessed at.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Docstring", "parse_docstring"]

_ARGS_HEADERS: Final = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
)
_RETURNS_HEADERS: Final = frozenset({"returns", "return"})
_ALL_HEADERS: Final = (
    _ARGS_HEADERS
    | _RETURNS_HEADERS
    | {
        "raises",
        "yields",
        "yield",
        "example",
        "examples",
        "note",
        "notes",
        "warning",
        "warnings",
        "see also",
        "attributes",
        "todo",
    }
)
_HEADER_RE: Final = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
# "name (type): text", "name: text", "*args: text", "**kwargs (int): text"
_ARG_RE: Final = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(slots=True)
class Docstring:
    """The parts of a docstring the self-description uses.

    Attributes:
        summary: The first paragraph, joined into one line ("" when there is no docstring).
        description: The whole text without the ``Args:`` and ``Returns:`` sections.
        params: Parameter name (without ``*``) → its description.
        returns: The text of the ``Returns:`` section ("" when absent).
    """

    summary: str = ""
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _section_entries(lines: list[str]) -> dict[str, str]:
    """Split the body of an ``Args:`` section into ``name → text``."""
    entries: dict[str, str] = {}
    base = min((_indent(line) for line in lines if line.strip()), default=0)
    current: str | None = None
    for line in lines:
        if not line.strip():
            continue
        match = _ARG_RE.match(line.strip()) if _indent(line) == base else None
        if match:
            current = match.group(1)
            entries[current] = match.group(2).strip()
        elif current is not None:
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries


def parse_docstring(doc: str | None) -> Docstring:
    """Parse a Google-style docstring.

    Args:
        doc: The raw docstring (``func.__doc__``), possibly ``None``.

    Returns:
        The summary, the remaining prose, the parameter descriptions and the text of
        the ``Returns:`` section.
    """
    if not doc or not doc.strip():
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    result = Docstring()
    prose: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        header = _HEADER_RE.match(line)
        name = header.group(1).strip().lower() if header else ""
        if header and _indent(line) == 0 and name in _ALL_HEADERS:
            body: list[str] = []
            index += 1
            while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > 0):
                body.append(lines[index])
                index += 1
            if name in _ARGS_HEADERS:
                result.params.update(_section_entries(body))
                continue
            if name in _RETURNS_HEADERS:
                result.returns = " ".join(part.strip() for part in body if part.strip())
                continue
            prose.append(line)
            prose.extend(body)
            continue
        prose.append(line)
        index += 1
    description = "\n".join(prose).strip()
    result.description = re.sub(r"\n{3,}", "\n\n", description)
    summary_lines: list[str] = []
    for line in result.description.splitlines():
        if not line.strip():
            break
        summary_lines.append(line.strip())
    result.summary = " ".join(summary_lines)
    return result
