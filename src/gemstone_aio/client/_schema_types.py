"""Python types for the JSON Schemas of an OpenRPC document, as source text.

It reads the schemas pydantic writes (the ones gemstone-aio services publish) and the
usual hand-written ones: ``$ref`` to ``components.schemas``, ``type`` (one or a list),
``enum`` and ``const``, ``anyOf``/``oneOf``, arrays (draft 7 tuples too), objects with
``properties`` or ``additionalProperties``, and the ``format``s pydantic validates
(dates, times, UUIDs). What it cannot say precisely becomes ``typing.Any``.

Each component becomes a definition: an object with properties a pydantic model, an
enum an ``enum.Enum``, anything else a type alias.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pydantic

from ._pysource import docstring, exploded, identifier, literal, string

__all__ = ["SchemaTypes"]

_REF: Final = "#/components/schemas/"
_FORMATS: Final = {
    "date-time": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    "duration": "datetime.timedelta",
    "uuid": "uuid.UUID",
}
_SCALARS: Final = {"integer": "int", "number": "float", "boolean": "bool", "null": "None"}
# Field names pydantic refuses or warns about (they shadow BaseModel's attributes).
_MODEL_ATTRS: Final = frozenset(dir(pydantic.BaseModel))


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    alias: str | None
    annotation: str
    default: str | None  # source after "=", None: required
    description: str | None


class SchemaTypes:
    """Names and writes the Python types of one document's schemas.

    Args:
        components: The document's ``components.schemas``.
        taken: Names the module uses otherwise (imports, client classes).
    """

    def __init__(self, components: Mapping[str, Any], taken: set[str]) -> None:
        self.components = dict(components)
        self.modules: set[str] = set()  # stdlib modules the annotations use
        self.names: dict[str, str] = {}
        twins = self._twins()
        for key in self.components:
            if key in twins:
                continue
            base = twins.get(f"{key}@", key)
            name = identifier(base.rsplit("__", 1)[-1] if "__" in base else base, taken)
            name = name[:1].upper() + name[1:]
            while name in taken:
                name += "_"
            taken.add(name)
            self.names[key] = name
        for output, input_ in twins.items():
            if not output.endswith("@"):
                self.names[output] = self.names[input_]
                del self.components[output]

    def _twins(self) -> dict[str, str]:
        """Find pydantic's ``X-Input``/``X-Output`` pairs that are one schema (one class).

        Returns ``{"X-Output": "X-Input", "X-Input@": "X"}`` for each such pair.
        """
        found: dict[str, str] = {}
        for key, schema in self.components.items():
            if not key.endswith("-Input"):
                continue
            base = key.removesuffix("-Input")
            other = self.components.get(f"{base}-Output")
            if other is None:
                continue
            text = json.dumps(other, sort_keys=True).replace(
                f'"{_REF}{base}-Output"', f'"{_REF}{base}-Input"'
            )
            if text == json.dumps(schema, sort_keys=True):
                found[f"{base}-Output"] = key
                found[f"{key}@"] = base
        return found

    # -- annotations ---------------------------------------------------------------------

    def _component(self, schema: Any) -> str | None:
        ref = schema.get("$ref") if isinstance(schema, Mapping) else None
        if isinstance(ref, str) and ref.startswith(_REF):
            return ref[len(_REF) :]
        return None

    def resolve(self, schema: Any) -> Any:
        """``schema``, or the component it refers to."""
        key = self._component(schema)
        return self.components.get(key, {}) if key is not None else schema

    def annotation(self, schema: Any) -> str:
        """The Python type of ``schema`` as source text."""
        if not isinstance(schema, Mapping):
            return "typing.Any"
        key = self._component(schema)
        if key is not None:
            return self.names.get(key, "typing.Any")
        if "$ref" in schema:
            return "typing.Any"
        if "const" in schema:
            return self._literal_type([schema["const"]])
        if isinstance(schema.get("enum"), list):
            return self._literal_type(schema["enum"])
        for union in ("anyOf", "oneOf"):
            if isinstance(schema.get(union), list):
                return self._union([self.annotation(s) for s in schema[union]])
        if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            return self.annotation(schema["allOf"][0])
        kind = schema.get("type")
        if isinstance(kind, list):
            return self._union([self._typed(schema, k) for k in kind])
        return self._typed(schema, kind) if isinstance(kind, str) else "typing.Any"

    def _union(self, parts: list[str]) -> str:
        unique = list(dict.fromkeys(parts))
        if "typing.Any" in unique:
            return "typing.Any"
        # None last, as people write it.
        unique.sort(key=lambda part: part == "None")
        return " | ".join(unique)

    def _literal_type(self, values: list[Any]) -> str:
        items = [literal(v) for v in values if v is None or isinstance(v, str | int | bool)]
        if not items or len(items) != len(values):
            return "typing.Any"
        return f"typing.Literal[{', '.join(i for i in items if i)}]"

    def _typed(self, schema: Mapping[str, Any], kind: str) -> str:
        if kind == "string":
            name = _FORMATS.get(str(schema.get("format")))
            if name is None:
                return "str"
            self.modules.add(name.split(".")[0])
            return name
        if kind in _SCALARS:
            return _SCALARS[kind]
        if kind == "array":
            items = schema.get("items")
            if isinstance(items, list):  # a draft 7 tuple
                parts = [self.annotation(item) for item in items]
                if schema.get("additionalItems", True) is not False:
                    return "list[typing.Any]"
                return f"tuple[{', '.join(parts)}]" if parts else "tuple[()]"
            return f"list[{self.annotation(items)}]" if items is not None else "list[typing.Any]"
        if kind == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping) and not schema.get("properties"):
                return f"dict[str, {self.annotation(extra)}]"
            return "dict[str, typing.Any]"
        return "typing.Any"

    # -- defaults ------------------------------------------------------------------------

    def default(self, value: Any, schema: Any) -> str | None:
        """A short literal for a default of type ``schema``, or ``None`` if it has none.

        Scalars are written as themselves and an enum's value as its member; lists,
        objects and long strings have no short literal.
        """
        for option in self._options(schema):
            target = self.resolve(option)
            key = self._component(option)
            values = target.get("enum") if key is not None else None
            if key is not None and isinstance(values, list) and value in values:
                return f"{self.names[key]}.{self._member(value, values)}"
        if isinstance(value, list | dict):
            return None
        text = literal(value)
        return text if text is not None and len(text) <= 40 else None

    def _options(self, schema: Any) -> list[Any]:
        if isinstance(schema, Mapping):
            for union in ("anyOf", "oneOf"):
                if isinstance(schema.get(union), list):
                    return list(schema[union])
        return [schema]

    def _member(self, value: Any, values: list[Any]) -> str:
        names = self._members(values)
        return names[values.index(value)]

    def _members(self, values: list[Any]) -> list[str]:
        taken: set[str] = set()
        names: list[str] = []
        for value in values:
            if isinstance(value, str) and identifier(value)[0].isalpha():
                base = identifier(value).upper()
            else:  # numbers, None, text that starts with a digit: VALUE_1, VALUE_MINUS_2
                text = identifier(str(value).replace("-", "minus_")).lstrip("_")
                base = "VALUE_" + text.upper()
            name = identifier(base, taken | {"name", "value"})
            taken.add(name)
            names.append(name)
        return names

    # -- definitions ---------------------------------------------------------------------

    def definitions(self) -> list[str]:
        """The source of every component, in an order where each follows what it uses."""
        blocks: list[str] = []
        done: set[str] = set()
        rebuild: list[str] = []

        def visit(key: str, path: tuple[str, ...]) -> None:
            if key in done or key in path:
                return
            for used in self._uses(self.components[key]):
                if used in self.components:
                    if used in path or used == key:
                        rebuild.append(self.names[key])
                    visit(used, (*path, key))
            if key not in done:
                done.add(key)
                blocks.append(self._definition(key))

        for key in self.components:
            visit(key, ())
        if rebuild:
            blocks.append("\n".join(f"{name}.model_rebuild()" for name in dict.fromkeys(rebuild)))
        return blocks

    def _uses(self, node: Any) -> list[str]:
        found: list[str] = []
        if isinstance(node, Mapping):
            key = self._component(node)
            if key is not None:
                found.append(key)
            for value in node.values():
                found.extend(self._uses(value))
        elif isinstance(node, list):
            for item in node:
                found.extend(self._uses(item))
        return found

    def _definition(self, key: str) -> str:
        schema = self.components[key]
        name = self.names[key]
        description = schema.get("description") if isinstance(schema, Mapping) else None
        if isinstance(schema, Mapping) and isinstance(schema.get("enum"), list):
            return self._enum(name, schema["enum"], description)
        if isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping):
            return self._model(name, schema, description)
        return f"{name}: typing.TypeAlias = {self.annotation(schema)}"

    def _enum(self, name: str, values: list[Any], description: Any) -> str:
        self.modules.add("enum")
        lines = [f"class {name}(enum.Enum):"]
        lines += docstring([str(description or f"The ``{name}`` values.")], 4)
        lines.append("")
        for member, value in zip(self._members(values), values, strict=True):
            lines.append(f"    {member} = {literal(value) or repr(str(value))}")
        return "\n".join(lines)

    def _fields(self, schema: Mapping[str, Any]) -> list[_Field]:
        required = set(schema.get("required") or ())
        taken: set[str] = set()
        fields = []
        for wire, prop in schema["properties"].items():
            name = identifier(wire, taken | _MODEL_ATTRS)
            if name.startswith("model_"):
                name = identifier(f"field_{name}", taken)
            taken.add(name)
            annotation = self.annotation(prop)
            default: str | None = None
            if wire not in required:
                if isinstance(prop, Mapping) and "default" in prop:
                    default = self._field_default(prop["default"], prop)
                else:
                    annotation = self._union([annotation, "None"])
                    default = "None"
            text = prop.get("description") if isinstance(prop, Mapping) else None
            alias = None if name == wire else wire
            fields.append(_Field(name, alias, annotation, default, text))
        return fields

    def _field_default(self, value: Any, schema: Any) -> str:
        short = self.default(value, schema)
        if short is not None:
            return short
        if value == []:
            return "pydantic.Field(default_factory=list)"
        if value == {}:
            return "pydantic.Field(default_factory=dict)"
        return f"pydantic.Field(default={literal(value)}, validate_default=True)"

    def _model(self, name: str, schema: Mapping[str, Any], description: Any) -> str:
        fields = self._fields(schema)
        documented = [f for f in fields if f.description]
        paragraphs = [str(description or f"The ``{name}`` schema.")]
        if documented:
            entries = "\n".join(f"    {f.name}: {f.description}" for f in documented)
            paragraphs.append("Attributes:\n" + entries)
        lines = [f"class {name}(pydantic.BaseModel):", *docstring(paragraphs, 4), ""]
        if any(f.alias for f in fields):
            lines.append("    model_config = pydantic.ConfigDict(populate_by_name=True)")
            lines.append("")
        for f in fields:
            head = f"    {f.name}: {f.annotation}"
            if f.alias is None:
                lines.append(head if f.default is None else f"{head} = {f.default}")
                continue
            args = [f"alias={string(f.alias)}"]
            if f.default is not None and f.default.startswith("pydantic.Field("):
                args.append(f.default[len("pydantic.Field(") : -1])
            elif f.default is not None:
                args.append(f"default={f.default}")
            lines += exploded(f"{f.name}: {f.annotation} = pydantic.Field(", args, ")", 4)
        return "\n".join(lines)
