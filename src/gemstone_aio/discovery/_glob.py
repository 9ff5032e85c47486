"""Service-name globs: ``*`` and ``?`` are the only wildcards, matched in linear time.

Every other character matches itself, so ``_`` and ``%`` (wildcards of SQL ``LIKE``)
and ``[`` (a character class in :mod:`fnmatch` and in Redis) are literal. Matching is
case-sensitive and covers the whole name.

No regular expression with quantifiers is ever built, so no pattern can make matching
backtrack: the pattern is cut at its ``*`` into segments, the first must start the
name, the last must end it, and each one between is searched once, left to right, from
where the previous one ended (the leftmost place is always the best one). A segment is
a plain substring search, or, when it holds ``?``, a search for a fixed-length regular
expression of literals and ``.``. Patterns are at most :data:`MAX_PATTERN_LENGTH`
characters long.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "MAX_PATTERN_LENGTH",
    "Glob",
    "check_pattern",
    "compile_glob",
    "glob_matches",
    "has_wildcards",
    "literal_prefix",
    "redis_match_pattern",
]

MAX_PATTERN_LENGTH = 256
"""The longest pattern accepted (the longest name the reference registry accepts)."""


def check_pattern(pattern: str) -> None:
    """Raise :class:`ValueError` naming the limit if ``pattern`` is too long to be a name glob."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"a service pattern may be at most {MAX_PATTERN_LENGTH} characters long, "
            f"got {len(pattern)}"
        )


def has_wildcards(pattern: str) -> bool:
    """Tell whether ``pattern`` holds ``*`` or ``?`` (else it names one service exactly)."""
    return "*" in pattern or "?" in pattern


def literal_prefix(pattern: str) -> str:
    """The part of ``pattern`` before its first wildcard (every match starts with it)."""
    for index, char in enumerate(pattern):
        if char in "*?":
            return pattern[:index]
    return pattern


class _Segment:
    """A run of the pattern between two ``*``: literals and ``?``."""

    __slots__ = ("length", "regex", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.length = len(text)
        self.regex = (
            re.compile("".join("." if c == "?" else re.escape(c) for c in text), re.DOTALL)
            if "?" in text
            else None
        )

    def at(self, name: str, pos: int) -> bool:
        """Whether the segment matches ``name`` exactly at ``pos``."""
        if pos < 0 or pos + self.length > len(name):
            return False
        if self.regex is None:
            return name.startswith(self.text, pos)
        return self.regex.match(name, pos) is not None

    def find(self, name: str, pos: int, end: int) -> int:
        """The leftmost start of the segment within ``name[pos:end]``, or -1."""
        if self.regex is None:
            return name.find(self.text, pos, end)
        found = self.regex.search(name, pos, end)
        return -1 if found is None else found.start()


class Glob:
    """A compiled glob (see the module documentation); :meth:`matches` tests a name."""

    __slots__ = ("_first", "_last", "_middle", "_star", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts = pattern.split("*")
        self._star = len(parts) > 1
        self._first = _Segment(parts[0])
        self._last = _Segment(parts[-1])
        self._middle = [_Segment(part) for part in parts[1:-1] if part]

    def matches(self, name: str) -> bool:
        """Whether the whole of ``name`` matches the pattern."""
        first = self._first
        if not self._star:
            return len(name) == first.length and first.at(name, 0)
        end = len(name) - self._last.length
        if end < first.length or not first.at(name, 0) or not self._last.at(name, end):
            return False
        pos = first.length
        for segment in self._middle:
            found = segment.find(name, pos, end)
            if found < 0:
                return False
            pos = found + segment.length
        return True

    def fullmatch(self, name: str) -> bool:
        """The same as :meth:`matches` (the name of :class:`re.Pattern`'s method)."""
        return self.matches(name)


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob:
    """Return the compiled ``pattern`` (cached).

    Raises:
        ValueError: ``pattern`` is longer than :data:`MAX_PATTERN_LENGTH`.
    """
    check_pattern(pattern)
    return Glob(pattern)


def glob_matches(pattern: str, name: str) -> bool:
    """Tell whether the whole of ``name`` matches the glob ``pattern``.

    Raises:
        ValueError: ``pattern`` is longer than :data:`MAX_PATTERN_LENGTH`.
    """
    return compile_glob(pattern).matches(name)


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
