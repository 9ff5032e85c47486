"""Parsing the ``PARAMS`` of ``gemstone call``, and converting strings to declared types.

Three forms, one per item:

* ``key=value``: ``value`` is sent as a string (``a=b=c`` gives ``{"a": "b=c"}``);
* ``key:=<json>``: the JSON value is sent as is (``n:=5``, ``tags:='["a","b"]'``);
* a bare value: a positional param, parsed as JSON; text that is not JSON is a string.

Items of the first and third forms that are plain strings may later be converted to the
parameter types a service declares in its ``rpc.discover`` document (:func:`coerce`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Params", "ParamsError", "coerce", "find_method", "parse_params", "resolve_schema"]

_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)(:=|=)(.*)$", re.DOTALL)


class ParamsError(ValueError):
    """A ``PARAMS`` item cannot be used; the message names it."""


@dataclass
class Params:
    """Parsed params: by name (a dict) or by position (a list), or none.

    Attributes:
        value: What is sent as ``params`` (``None``: the member is left out).
        loose: Keys (by name) or indexes (by position) whose value was given as plain
            text and may be converted to the declared type.
    """

    value: dict[str, Any] | list[Any] | None = None
    loose: set[str | int] = field(default_factory=set)


def parse_params(items: Sequence[str]) -> Params:
    """Parse command-line ``PARAMS`` items.

    Raises:
        ParamsError: A ``key:=`` value is not JSON, a key repeats, or by-name and
            by-position items are mixed.
    """
    named: dict[str, Any] = {}
    positional: list[Any] = []
    loose: set[str | int] = set()
    first_named: str | None = None
    first_positional: str | None = None
    for item in items:
        match = _NAMED.match(item)
        if match is None:
            first_positional = first_positional or item
            try:
                positional.append(json.loads(item))
            except ValueError:
                loose.add(len(positional))
                positional.append(item)
            continue
        key, operator, text = match.groups()
        first_named = first_named or item
        if key in named:
            raise ParamsError(f"param {key!r} is given twice")
        if operator == ":=":
            try:
                named[key] = json.loads(text)
            except ValueError as exc:
                raise ParamsError(f"{item!r}: the value after ':=' is not JSON ({exc})") from None
        else:
            named[key] = text
            loose.add(key)
    if named and positional:
        raise ParamsError(
            f"{first_named!r} is by name and {first_positional!r} is by position: "
            "JSON-RPC params go one way or the other"
        )
    if named:
        return Params(named, loose)
    if positional:
        return Params(positional, loose)
    return Params()


# -- conversion to declared types ------------------------------------------------------


def resolve_schema(schema: Any, document: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """Follow local ``$ref`` pointers (``#/components/schemas/X``) in an OpenRPC document."""
    while isinstance(schema, Mapping) and "$ref" in schema and depth < 20:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        schema, depth = target, depth + 1
    return dict(schema) if isinstance(schema, Mapping) else {}


def _types(schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[str]:
    """The JSON types a schema admits, in the order declared."""
    found: list[str] = []
    declared = schema.get("type")
    if isinstance(declared, str):
        found.append(declared)
    elif isinstance(declared, list):
        found.extend(t for t in declared if isinstance(t, str))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or ():
            found.extend(_types(resolve_schema(sub, document), document))
    if "enum" in schema and not found:
        found.extend(type(v).__name__ for v in schema["enum"])
    return found


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _convert(text: str, kind: str) -> tuple[bool, Any]:
    """Try to read ``text`` as a value of JSON type ``kind``; ``(ok, value)``."""
    if kind == "integer":
        try:
            return True, int(text)
        except ValueError:
            return False, None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return False, None
        return True, int(number) if number.is_integer() and "." not in text else number
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return True, lowered in _TRUE
        return False, None
    if kind == "null":
        return (True, None) if text == "null" else (False, None)
    if kind in ("array", "object"):
        try:
            value = json.loads(text)
        except ValueError:
            return False, None
        wanted = list if kind == "array" else dict
        return (True, value) if isinstance(value, wanted) else (False, None)
    return False, None


def _coerce_one(text: Any, schema: Any, document: Mapping[str, Any]) -> Any:
    if not isinstance(text, str):
        return text
    types = _types(resolve_schema(schema, document), document)
    if not types or "string" in types:
        return text
    for kind in types:
        ok, value = _convert(text, kind)
        if ok:
            return value
    return text  # leave it to the service to say what is wrong


def find_method(document: Mapping[str, Any], method: str) -> Mapping[str, Any] | None:
    """The method object named ``method`` in an OpenRPC document, if any."""
    for entry in document.get("methods") or ():
        if isinstance(entry, Mapping) and entry.get("name") == method:
            return entry
    return None


def coerce(params: Params, document: Mapping[str, Any], method: str) -> Params:
    """Convert the loose strings of ``params`` to the types ``method`` declares.

    A value whose declared type admits strings, or that does not read as the declared
    type, is left as is: the service then reports what is wrong with it.
    """
    entry = find_method(document, method)
    if entry is None or not params.loose:
        return params
    declared = [p for p in entry.get("params") or () if isinstance(p, Mapping)]
    if isinstance(params.value, dict):
        by_name = {p.get("name"): p.get("schema") for p in declared}
        value: Any = {
            k: _coerce_one(v, by_name[k], document) if k in params.loose and k in by_name else v
            for k, v in params.value.items()
        }
    elif isinstance(params.value, list):
        # A trailing ``*args`` descriptor (``x-variadic``) types every further value.
        variadic = declared[-1] if declared and declared[-1].get("x-variadic") else None

        def schema_at(i: int) -> Any:
            if i < len(declared):
                return declared[i].get("schema")
            return variadic.get("schema") if variadic is not None else None

        value = [
            _coerce_one(v, schema_at(i), document) if i in params.loose else v
            for i, v in enumerate(params.value)
        ]
    else:
        return params
    return Params(value, set(params.loose))
