"""Small pieces of Python source text, written the way ruff's formatter writes them.

The generated clients must pass ``ruff format --check``, whatever the line length a
project sets (88 by default, 100 here): a construct is written on one line when that
fits in 88 columns, else exploded one item per line with a trailing comma (a "magic
trailing comma", which keeps the formatter from joining it again).
"""

from __future__ import annotations

import keyword
import math
import re
import textwrap
from collections.abc import Sequence
from typing import Any, Final

__all__ = [
    "LINE",
    "docstring",
    "exploded",
    "identifier",
    "literal",
    "string",
]

LINE: Final = 88
"""Columns a line may take (ruff's default, so it fits any larger setting too)."""

_NOT_WORD: Final = re.compile(r"\W+")


def string(text: str) -> str:
    """A string literal as ruff writes it: double quotes unless that needs more escapes."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == quote:
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return quote + "".join(out) + quote


def literal(value: Any) -> str | None:
    """The Python literal of a JSON value (``None`` for a float that is not finite)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list):
        items = [literal(item) for item in value]
        return None if None in items else "[" + ", ".join(i for i in items if i) + "]"
    if isinstance(value, dict):
        pairs = [(string(str(k)), literal(v)) for k, v in value.items()]
        if any(v is None for _, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return None


def identifier(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A valid Python identifier close to ``name``, not a keyword and not in ``taken``."""
    text = _NOT_WORD.sub("_", name).strip("_") or "value"
    if text[0].isdigit():
        text = f"_{text}"
    while keyword.iskeyword(text) or text in taken:
        text += "_"
    return text


def exploded(head: str, items: Sequence[str], tail: str, indent: int) -> list[str]:
    """``head item, item tail`` on one line if it fits, else one item per line.

    ``head`` ends with the opening bracket and ``tail`` starts with the closing one.
    """
    pad = " " * indent
    one = f"{pad}{head}{', '.join(items)}{tail}"
    if len(one) <= LINE:
        return [one]
    inner = " " * (indent + 4)
    return [f"{pad}{head}", *(f"{inner}{item}," for item in items), f"{pad}{tail}"]


def docstring(paragraphs: Sequence[str], indent: int) -> list[str]:
    """A docstring of text paragraphs (lines starting with spaces are kept as written)."""
    pad = " " * indent
    width = max(LINE - indent, 40)
    body: list[str] = []
    for index, paragraph in enumerate(p for p in paragraphs if p.strip()):
        if not index:  # the summary stays one line, whatever its length (pydocstyle D205)
            body.append(" ".join(paragraph.split()))
            continue
        body.append("")
        for line in paragraph.rstrip().splitlines():
            if not line.strip():
                body.append("")
                continue
            # An indented line is a section entry ("name: text"): its continuation lines
            # go four columns further, as Google-style docstrings want.
            lead = len(line) - len(line.lstrip())
            more = lead + 4 if lead else 0
            wrapped = textwrap.wrap(
                line.strip(),
                width,
                initial_indent=" " * lead,
                subsequent_indent=" " * more,
                break_long_words=False,
                break_on_hyphens=False,
            )
            body.extend(wrapped)
    text = "\n".join(body).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "  # a quote right before the closing ones would end the string early
    quotes = '"""'
    lines = text.split("\n")
    if len(lines) == 1:  # even if too long: pydocstyle wants a one-line docstring so (D200)
        return [pad + quotes + lines[0] + quotes]
    out = [pad + quotes + lines[0]]
    out.extend(pad + line if line else "" for line in lines[1:])
    out.append(pad + quotes)
    return out
