"""Service-name globs: ``*`` and ``?`` are the only wildcards.

Every other character matches itself, so ``_`` and ``%`` (wildcards of SQL ``LIKE``)
and ``[`` (a character class in :mod:`fnmatch` and in Redis) are literal. Matching is
case-sensitive and covers the whole name.
"""

from __future__ import annotations

import functools
import re

__all__ = ["compile_glob", "glob_matches", "redis_match_pattern"]


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Return a regular expression matching exactly the names ``pattern`` matches.

    ``*`` matches any run of characters (also none), ``?`` exactly one character, and
    anything else only itself.
    """
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            if not parts or parts[-1] != ".*":  # ``**`` means the same as ``*``
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(pattern: str, name: str) -> bool:
    """Tell whether the whole of ``name`` matches the glob ``pattern``."""
    return compile_glob(pattern).fullmatch(name) is not None


def redis_match_pattern(pattern: str) -> str:
    r"""Translate ``pattern`` to a Redis ``MATCH`` pattern that matches at least the same names.

    Redis globs know ``[...]`` and ``\`` escapes, so those are escaped. Redis's ``?``
    matches one byte rather than one character, so ``?`` widens to ``*``: callers filter
    the candidates exactly with :func:`glob_matches`.
    """
    out: list[str] = []
    for char in pattern:
        if char in "*?":
            out.append("*")
        elif char in "[]\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
