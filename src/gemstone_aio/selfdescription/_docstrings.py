"""Reading docstrings for the self-description, with griffe (the library mkdocstrings uses).

griffe parses Google-style docstrings into sections. The OpenRPC document needs the
summary (the first paragraph), the prose that remains once the parameter and return
sections are taken out (other sections, such as ``Raises:`` or ``Example:``, are written
back as prose), the per-parameter descriptions and the text of ``Returns:``.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Final

from griffe import Docstring as GriffeDocstring
from griffe import DocstringSectionKind, parse_google

__all__ = ["Docstring", "parse_docstring"]

_PARAMS: Final = frozenset({DocstringSectionKind.parameters, DocstringSectionKind.other_parameters})
_TITLES: Final = {
    DocstringSectionKind.raises: "Raises",
    DocstringSectionKind.warns: "Warns",
    DocstringSectionKind.yields: "Yields",
    DocstringSectionKind.receives: "Receives",
    DocstringSectionKind.attributes: "Attributes",
    DocstringSectionKind.functions: "Functions",
    DocstringSectionKind.classes: "Classes",
    DocstringSectionKind.modules: "Modules",
    DocstringSectionKind.examples: "Examples",
    DocstringSectionKind.deprecated: "Deprecated",
    DocstringSectionKind.type_parameters: "Type Parameters",
    DocstringSectionKind.type_aliases: "Type Aliases",
}


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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _item(element: Any) -> str:
    """``name (annotation): description`` of one element of a list-like section."""
    name = getattr(element, "name", "") or ""
    annotation = getattr(element, "annotation", None)
    head = f"{name} ({annotation})" if name and annotation else name or str(annotation or "")
    description = str(getattr(element, "description", "") or "")
    first, _, rest = description.partition("\n")
    text = f"{head}: {first}" if head else first
    if rest:
        text += "\n" + textwrap.indent(rest, "    ")
    return text


def _as_prose(section: Any) -> str:
    """A section other than parameters and returns, written back as docstring text."""
    kind, value = section.kind, section.value
    if kind is DocstringSectionKind.text:
        return str(value)
    if kind is DocstringSectionKind.admonition:
        return f"{section.title}:\n" + textwrap.indent(str(value.description), "    ")
    title = section.title or _TITLES.get(kind, kind.value.title())
    if kind is DocstringSectionKind.examples:
        body = "\n\n".join(str(text) for _, text in value)
    elif kind is DocstringSectionKind.deprecated:
        body = f"{value.version}: {value.description}" if value.version else value.description
    elif isinstance(value, list):
        body = "\n".join(_item(element) for element in value)
    else:
        body = str(value)
    return f"{title}:\n" + textwrap.indent(body, "    ")


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
    sections = parse_google(
        GriffeDocstring(inspect.cleandoc(doc)),
        returns_multiple_items=False,
        returns_named_value=False,
        warn_unknown_params=False,
        warn_missing_types=False,
        warnings=False,
    )
    result = Docstring()
    prose: list[str] = []
    for section in sections:
        if section.kind in _PARAMS:
            for param in section.value:
                result.params[param.name.lstrip("*")] = _one_line(param.description)
        elif section.kind is DocstringSectionKind.returns:
            result.returns = " ".join(_one_line(item.description) for item in section.value)
        else:
            prose.append(_as_prose(section))
    result.description = re.sub(r"\n{3,}", "\n\n", "\n\n".join(prose).strip())
    first_paragraph = result.description.split("\n\n", 1)[0]
    result.summary = _one_line(first_paragraph)
    return result
